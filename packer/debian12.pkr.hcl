# A Debian 12 Docker host, tuned for about a thousand simulator containers, as a Vagrant
# box for VirtualBox, VMware and QEMU/libvirt. Build with packer/build.sh (it stages
# packer/payload/ first); see vagrant/README.md.
#
# No required_plugins block: packer 1.6.6, the version Debian ships, rejects it, and all
# three builders and the vagrant post-processor are built into it.

variable "debian_version" {
  type        = string
  default     = "12.12.0"
  description = "Debian 12 point release whose netinst ISO is installed (from cdimage's archive, whose URLs do not move)."
}

variable "iso_url" {
  type        = string
  default     = ""
  description = "Override the netinst ISO (a local path or mirror); empty means cdimage.debian.org's archive for debian_version."
}

variable "iso_checksum" {
  type        = string
  default     = ""
  description = "Checksum of iso_url (sha256:…); empty means the pinned one for 12.12.0, or the SHA256SUMS file beside any other archived ISO."
}

variable "cpus" {
  type    = number
  default = 2
}

variable "memory" {
  type        = number
  default     = 2048
  description = "MiB for the build VM only; the Vagrantfile sizes the running box."
}

variable "disk_size" {
  type        = number
  default     = 40960
  description = "MiB. Room for images, a first-boot build (toolchain and target dir, ~3 GiB) and 1000 containers' logs."
}

variable "headless" {
  type    = bool
  default = true
}

variable "plcfleet_build" {
  type        = string
  default     = "firstboot"
  description = "When the box has no prebuilt plcfleet: build it on first boot (firstboot) or never (never)."
}

variable "qemu_accelerator" {
  type    = string
  default = "kvm"
}

variable "vmware_guest_os_type" {
  type        = string
  default     = "debian12-64"
  description = "VMware Workstation < 17 does not know debian12-64; use debian11-64 there."
}

locals {
  iso_base = "https://cdimage.debian.org/cdimage/archive/${var.debian_version}/amd64/iso-cd"
  iso_url  = var.iso_url != "" ? var.iso_url : "${local.iso_base}/debian-${var.debian_version}-amd64-netinst.iso"
  # Pinned, so a build installs exactly the ISO this template was written for and
  # `packer validate` needs no network (a file: checksum is fetched even to validate).
  iso_sha256_12_12_0   = "sha256:dfc30e04fd095ac2c07e998f145e94bb8f7d3a8eca3a631d2eb012398deae531"
  iso_checksum_default = var.debian_version == "12.12.0" ? local.iso_sha256_12_12_0 : "file:${local.iso_base}/SHA256SUMS"
  iso_checksum         = var.iso_checksum != "" ? var.iso_checksum : local.iso_checksum_default

  # The netinst ISO boots isolinux on BIOS: <esc> gives its boot: prompt, and the `auto`
  # label defers every question to the preseed file Packer serves. net.ifnames=0 here
  # and in the preseed's add-kernel-opts names the NICs eth0, eth1 under every
  # hypervisor, during the install and after.
  boot_command = [
    "<esc><wait>",
    "auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg ",
    "hostname=plcfleet domain=local ",
    "net.ifnames=0 biosdevname=0",
    "<enter>",
  ]

  shutdown_command = "echo 'vagrant' | sudo -S systemctl poweroff"
}

source "virtualbox-iso" "debian12" {
  vm_name              = "plcfleet-debian12"
  guest_os_type        = "Debian_64"
  iso_url              = local.iso_url
  iso_checksum         = local.iso_checksum
  cpus                 = var.cpus
  memory               = var.memory
  disk_size            = var.disk_size
  hard_drive_interface = "sata"
  headless             = var.headless
  http_directory       = "${path.root}/http"
  boot_wait            = "5s"
  boot_command         = local.boot_command
  # Guest Additions are not in Debian 12 main, and the Vagrantfile needs no shared folder.
  guest_additions_mode = "disable"
  ssh_username         = "vagrant"
  ssh_password         = "vagrant"
  ssh_timeout          = "45m"
  shutdown_command     = local.shutdown_command
  output_directory     = "${path.root}/output/vm-virtualbox"
}

source "vmware-iso" "debian12" {
  vm_name          = "plcfleet-debian12"
  guest_os_type    = var.vmware_guest_os_type
  iso_url          = local.iso_url
  iso_checksum     = local.iso_checksum
  cpus             = var.cpus
  memory           = var.memory
  disk_size        = var.disk_size
  disk_type_id     = "0"
  headless         = var.headless
  http_directory   = "${path.root}/http"
  boot_wait        = "5s"
  boot_command     = local.boot_command
  ssh_username     = "vagrant"
  ssh_password     = "vagrant"
  ssh_timeout      = "45m"
  shutdown_command = local.shutdown_command
  output_directory = "${path.root}/output/vm-vmware"
  vmx_data = {
    "ethernet0.virtualdev" = "vmxnet3"
  }
}

source "qemu" "debian12" {
  vm_name          = "plcfleet-debian12.qcow2"
  iso_url          = local.iso_url
  iso_checksum     = local.iso_checksum
  accelerator      = var.qemu_accelerator
  cpus             = var.cpus
  memory           = var.memory
  disk_size        = var.disk_size
  format           = "qcow2"
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  headless         = var.headless
  http_directory   = "${path.root}/http"
  boot_wait        = "5s"
  boot_command     = local.boot_command
  ssh_username     = "vagrant"
  ssh_password     = "vagrant"
  ssh_timeout      = "45m"
  shutdown_command = local.shutdown_command
  output_directory = "${path.root}/output/vm-qemu"
}

build {
  sources = [
    "source.virtualbox-iso.debian12",
    "source.vmware-iso.debian12",
    "source.qemu.debian12",
  ]

  # The same files and scripts provision the stock-box fallback in vagrant/Vagrantfile.
  provisioner "shell" {
    inline = ["mkdir -p /tmp/plcfleet-files /tmp/plcfleet-payload"]
  }

  provisioner "file" {
    source      = "${path.root}/files/"
    destination = "/tmp/plcfleet-files"
  }

  # What packer/stage.sh put there: the source tree, and prebuilt binaries and saved
  # images when the build host had them.
  provisioner "file" {
    source      = "${path.root}/payload/"
    destination = "/tmp/plcfleet-payload"
  }

  provisioner "shell" {
    execute_command = "echo 'vagrant' | sudo -S env {{ .Vars }} bash '{{ .Path }}'"
    environment_vars = [
      "PLCFLEET_FILES=/tmp/plcfleet-files",
      "PLCFLEET_PAYLOAD=/tmp/plcfleet-payload",
      "PLCFLEET_BUILD=${var.plcfleet_build}",
    ]
    scripts = [
      "${path.root}/scripts/base.sh",
      "${path.root}/scripts/docker.sh",
      "${path.root}/scripts/sysctl.sh",
      "${path.root}/scripts/plcfleet.sh",
      "${path.root}/scripts/macvlan-shim.sh",
      "${path.root}/scripts/cleanup.sh",
    ]
  }

  post-processor "vagrant" {
    output            = "${path.root}/output/plcfleet-debian12-{{ .Provider }}.box"
    compression_level = 9
  }
}
