# One machine image definition for AWS, Azure and GCP: Ubuntu 24.04 LTS with the release binary of
# candidate-server as a hardened systemd service. Build one cloud at a time:
#   packer init . && packer build -only='amazon-ebs.aws' -var git_commit=$(git rev-parse HEAD) .
# The manifest post-processor writes packer-manifest.json, which Terraform and scripts read.

packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "~> 1.3"
    }
    azure = {
      source  = "github.com/hashicorp/azure"
      version = "~> 2.1"
    }
    googlecompute = {
      source  = "github.com/hashicorp/googlecompute"
      version = "~> 1.1"
    }
  }
}

variable "binary_path" {
  type        = string
  description = "The stripped release binary to install (scripts/build-release.sh writes dist/candidate-server)."
  default     = "../dist/candidate-server"
}

variable "client_path" {
  type        = string
  description = "The release build of candidatectl to install beside it (scripts/build-release.sh writes dist/candidatectl)."
  default     = "../dist/candidatectl"
}

variable "git_commit" {
  type        = string
  description = "The git commit the binary was built from; tagged/labelled on every image."
  validation {
    condition     = can(regex("^[0-9a-f]{7,40}$", var.git_commit))
    error_message = "The git_commit must be a hexadecimal commit id (7 to 40 characters)."
  }
}

variable "stack" {
  type        = string
  description = "The stack (Terraform's `name`) the image is built for: its `stack` tag/label, by which destroy deletes this stack's images only."
  default     = "candidates"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.stack))
    error_message = "The stack must be 2 to 21 lower-case letters, digits and dashes (Terraform's name)."
  }
}

variable "image_name_prefix" {
  type        = string
  description = "Prefix of the image name; a timestamp is appended."
  default     = "candidates"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.image_name_prefix))
    error_message = "The image_name_prefix must be lower-case letters, digits and dashes (GCP's rule, the strictest)."
  }
}

variable "aws_region" {
  type        = string
  description = "AWS region to build the AMI in."
  default     = "us-east-2"
}

variable "aws_instance_type" {
  type        = string
  description = "Instance type of the temporary AWS build instance."
  default     = "t3.small"
}

variable "azure_subscription_id" {
  type        = string
  description = "Azure subscription of the managed image (credentials come from the Azure CLI or ARM_* variables)."
  default     = ""
}

variable "azure_resource_group" {
  type        = string
  description = "Existing Azure resource group that receives the managed image."
  default     = "candidates-images"
}

variable "azure_location" {
  type        = string
  description = "Azure region of the build and the image."
  default     = "centralus"
}

variable "azure_vm_size" {
  type        = string
  description = "Size of the temporary Azure build VM."
  default     = "Standard_B2s"
}

variable "azure_allowed_inbound_ip_addresses" {
  type        = list(string)
  description = "Addresses or CIDR ranges that may reach the temporary Azure build VM over SSH: the builder's own public address (scripts/azure/apply.sh passes it; by hand: -var 'azure_allowed_inbound_ip_addresses=[\"$(curl -s https://checkip.amazonaws.com)\"]'). Never empty and never open to all: the plugin's default for an empty list admits everyone, so the default is 192.0.2.1 (TEST-NET-1, nobody), with which an Azure build that was not told the address times out on SSH instead. A variable without a default would be required by the AWS and GCP builds too."
  default     = ["192.0.2.1"]
  validation {
    condition = length(var.azure_allowed_inbound_ip_addresses) > 0 && alltrue([
      for a in var.azure_allowed_inbound_ip_addresses :
      can(regex("^[0-9]{1,3}(\\.[0-9]{1,3}){3}(/([89]|[12][0-9]|3[0-2]))?$", a)) && a != "0.0.0.0"
    ])
    error_message = "azure_allowed_inbound_ip_addresses: the builder's own IPv4 address(es) or narrow CIDR ranges (/8 or longer), not empty and not 0.0.0.0/0 (an empty list leaves the build VM's SSH open to all)."
  }
}

variable "gcp_project_id" {
  type        = string
  description = "GCP project that owns the image (credentials: Application Default Credentials)."
  default     = ""
}

variable "gcp_zone" {
  type        = string
  description = "GCP zone of the temporary build instance (scripts/gcp/apply.sh passes an UP zone of its region)."
  default     = "us-central1-a"
}

variable "gcp_network" {
  type        = string
  description = "VPC network of the temporary GCP build instance. It must admit 35.235.240.0/20 (IAP) on 22; the default network's default-allow-ssh does."
  default     = "default"
}

variable "gcp_subnetwork" {
  type        = string
  description = "Subnetwork of the temporary GCP build instance, in gcp_zone's region: needed when gcp_network is a custom-mode network. Empty: the network's subnet of that region (auto mode)."
  default     = ""
}

variable "gcp_machine_type" {
  type        = string
  description = "Machine type of the temporary GCP build instance."
  default     = "e2-small"
}

variable "image_family" {
  type        = string
  description = "GCP image family the image joins (instance templates follow the family)."
  default     = "candidates"
}

locals {
  timestamp  = formatdate("YYYYMMDDhhmmss", timestamp())
  image_name = "${var.image_name_prefix}-${local.timestamp}"
  labels = {
    application = "candidates"
    git_commit  = var.git_commit
    os          = "ubuntu-24-04"
    stack       = var.stack
  }
}

# Ubuntu 24.04 LTS (glibc 2.39) on all three clouds: build-release.sh refuses a binary that needs more.
source "amazon-ebs" "aws" {
  region        = var.aws_region
  instance_type = var.aws_instance_type
  ssh_username  = "ubuntu"
  ami_name      = local.image_name
  source_ami_filter {
    filters = {
      name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["099720109477"] # Canonical
    most_recent = true
  }
  # The build instance itself uses IMDSv2 only, like the instances launched from the image.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  # SSH to the build instance only from the address Packer runs at (the plugin looks it up), not
  # from anywhere.
  temporary_security_group_source_public_ip = true
  encrypt_boot                              = true
  tags                                      = local.labels
  run_tags                                  = local.labels
}

source "azure-arm" "azure" {
  subscription_id                   = var.azure_subscription_id
  use_azure_cli_auth                = true
  location                          = var.azure_location
  vm_size                           = var.azure_vm_size
  os_type                           = "Linux"
  image_publisher                   = "Canonical"
  image_offer                       = "ubuntu-24_04-lts"
  image_sku                         = "server"
  managed_image_name                = local.image_name
  managed_image_resource_group_name = var.azure_resource_group
  azure_tags                        = local.labels
  # An NSG on the build VM admitting SSH from these addresses only (the builder's).
  allowed_inbound_ip_addresses = var.azure_allowed_inbound_ip_addresses
}

source "googlecompute" "gcp" {
  project_id          = var.gcp_project_id
  zone                = var.gcp_zone
  machine_type        = var.gcp_machine_type
  source_image_family = "ubuntu-2404-lts-amd64"
  ssh_username        = "ubuntu"
  image_name          = local.image_name
  image_family        = var.image_family
  image_labels        = local.labels
  disk_size           = 10
  network             = var.gcp_network
  subnetwork          = var.gcp_subnetwork
  # No external address at all: SSH goes through Identity-Aware Proxy (35.235.240.0/20), so the
  # build VM is not reachable from the internet. Provisioning downloads nothing. The IAP API must
  # be enabled (the plugin's docs; scripts/gcp/apply.sh does it before the build).
  omit_external_ip = true
  use_internal_ip  = true
  use_iap          = true
  # Packer's temporary key goes into the builder's OS Login profile (the OS Login API), not into
  # instance metadata, so a project that blocks metadata SSH keys or enforces OS Login still
  # builds; ssh_username is replaced by the profile's POSIX name, which needs
  # roles/compute.osAdminLogin for sudo. No service account on the build VM: it calls no Google
  # API, and none means the builder needs no Service Account User on one.
  use_os_login                    = true
  disable_default_service_account = true
}

build {
  sources = ["source.amazon-ebs.aws", "source.azure-arm.azure", "source.googlecompute.gcp"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/candidates"]
  }

  provisioner "file" {
    sources = [
      var.binary_path,
      var.client_path,
      "${path.root}/files/candidates.service",
      "${path.root}/files/candidates-check-config",
      "${path.root}/files/candidates.env.example",
      "${path.root}/files/candidates-rsyslog.conf",
      "${path.root}/files/candidates-logrotate",
      "${path.root}/files/logrotate-hourly.conf",
      "${path.root}/files/candidates-rsyslog-azure.conf",
      "${path.root}/files/ops-agent.yaml",
    ]
    destination = "/tmp/candidates/"
  }

  provisioner "shell" {
    execute_command  = "sudo -E bash '{{ .Path }}'"
    environment_vars = ["SRC=/tmp/candidates"]
    script           = "${path.root}/scripts/provision.sh"
  }

  # AWS: the CloudWatch agent (Amazon's package, signature checked) and the rsyslog rule that
  # gives it the service's JSON lines as a file; each deployment configures it (terraform/aws).
  provisioner "shell" {
    only             = ["amazon-ebs.aws"]
    execute_command  = "sudo -E bash '{{ .Path }}'"
    environment_vars = ["SRC=/tmp/candidates"]
    script           = "${path.root}/scripts/install-cloudwatch-agent.sh"
  }

  # GCP: Google's Ops Agent with its configuration (the service's JSON lines as structured logs,
  # its Prometheus metrics) and the same rsyslog rule as AWS (terraform/gcp/observability.tf).
  provisioner "shell" {
    only             = ["googlecompute.gcp"]
    execute_command  = "sudo -E bash '{{ .Path }}'"
    environment_vars = ["SRC=/tmp/candidates"]
    script           = "${path.root}/scripts/install-ops-agent.sh"
  }

  # Azure: the Azure Monitor Agent (a VM extension, terraform/azure) reads the service's lines from
  # syslog; this rule keeps them out of /var/log/syslog after the agent's forwarder has them.
  provisioner "shell" {
    only            = ["azure-arm.azure"]
    execute_command = "sudo -E bash '{{ .Path }}'"
    inline          = ["install -m 0644 -o root -g root /tmp/candidates/candidates-rsyslog-azure.conf /etc/rsyslog.d/30-candidates.conf"]
  }

  # Azure images must be generalized before capture.
  provisioner "shell" {
    only            = ["azure-arm.azure"]
    execute_command = "sudo -E bash '{{ .Path }}'"
    inline          = ["/usr/sbin/waagent -force -deprovision+user && export HISTSIZE=0 && sync"]
  }

  post-processor "manifest" {
    output     = "packer-manifest.json"
    strip_path = true
    custom_data = {
      git_commit = var.git_commit
      image_name = local.image_name
    }
  }
}
