# The instances: a Uniform VM Scale Set from the Packer image over the zones, in the gateway's and
# the internal load balancer's pools, with the Application Health extension on /gtg, automatic
# repair, rolling image upgrades, a termination notice the service drains in, and autoscale.

data "azurerm_client_config" "current" {}

locals {
  manifest_path = var.packer_manifest != "" ? var.packer_manifest : "${path.module}/../../packer/packer-manifest.json"
  manifest      = fileexists(local.manifest_path) ? jsondecode(file(local.manifest_path)) : { builds = [] }
  # Builds are appended, so the last azure-arm one is the newest; its artifact_id is the image id.
  manifest_images = [for build in local.manifest.builds : build.artifact_id if build.builder_type == "azure-arm"]
  image_id        = var.image_id != "" ? var.image_id : try(local.manifest_images[length(local.manifest_images) - 1], "")

  # Rolling upgrades: 20 % batches, one instance at a time up to 5 instances (Azure rounds a
  # batch to at least one; ceil is the conservative reading).
  rolling_batch_percent = 20
  rolling_batch_size    = max(1, ceil(var.instances_max * local.rolling_batch_percent / 100))

  # The gateway's metric counts per minute; the variable is per second like every cloud's.
  requests_per_host_per_minute = var.target_requests_per_instance_per_second * 60

  gateway_pool_ids = [for pool in azurerm_application_gateway.rest.backend_address_pool : pool.id if pool.name == local.gateway_pool]
}

# The env file (store Cosmos DB, managed identity) and the scheduled-events drain watcher.
module "instance_config" {
  source                 = "../modules/instance-config"
  deployment             = "azure/${var.name}"
  http_port              = var.http_port
  grpc_port              = var.grpc_port
  metrics_port           = var.metrics_port
  drain_period_seconds   = var.drain_period_seconds
  shutdown_grace_seconds = var.shutdown_grace_seconds
  # Access (access.tf): the key file's digests and who may read.
  api_key_lines    = local.api_key_lines
  auth_read        = var.auth_read
  api_explorer     = var.api_explorer
  oidc_issuer      = var.oidc_issuer
  oidc_audience    = var.oidc_audience
  oidc_scope_claim = var.oidc_scope_claim
  store_env = {
    CANDIDATES_STORE             = "cosmos"
    COSMOS_ENDPOINT              = azurerm_cosmosdb_account.this.endpoint
    COSMOS_DATABASE_NAME         = azurerm_cosmosdb_sql_database.this.name
    COSMOS_CONTAINER_NAME        = azurerm_cosmosdb_sql_container.candidates.name
    CANDIDATES_COSMOS_REGION     = var.location
    CANDIDATES_INSTANCE_METADATA = "azure"
    # Names the identity rather than relying on IMDS's default for a VM's only identity.
    CANDIDATES_COSMOS_IDENTITY_CLIENT_ID = azurerm_user_assigned_identity.instances.client_id
  }
  files = [
    { path = "/usr/local/sbin/candidates-scheduled-events", permissions = "0755", content = file("${path.module}/files/scheduled-events-drain.py") },
    { path = "/etc/systemd/system/candidates-scheduled-events.service", permissions = "0644", content = file("${path.module}/files/candidates-scheduled-events.service") },
  ]
  enable_units = ["candidates-scheduled-events.service"]
}

resource "azurerm_linux_virtual_machine_scale_set" "this" {
  name                            = "${var.name}-vmss"
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
  sku                             = var.vm_size
  instances                       = var.instances_default
  zones                           = var.zones
  zone_balance                    = true
  source_image_id                 = local.image_id
  computer_name_prefix            = var.name
  admin_username                  = "azureuser"
  disable_password_authentication = true
  custom_data                     = base64encode(module.instance_config.user_data)
  # Extra VMs during creation would register in the pools and then vanish.
  overprovision              = false
  encryption_at_host_enabled = var.encryption_at_host
  tags                       = local.tags
  #checkov:skip=CKV_AZURE_97:Encryption at host needs a per-subscription feature registration; it is the variable encryption_at_host. Disks are encrypted at rest by the platform either way.

  admin_ssh_key {
    username = "azureuser"
    # The operator's own public key: the platform requires one, and no private key is ever in the
    # state (no port 22 is open either).
    public_key = trimspace(var.admin_ssh_public_key)
  }

  # Exactly one identity, user-assigned, already granted its Cosmos DB roles (cosmos.tf).
  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.instances.id]
  }

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "StandardSSD_LRS"
  }

  # No public IP: clients come through the gateway and the internal load balancer, egress is NAT.
  network_interface {
    name    = "nic"
    primary = true

    ip_configuration {
      name                                         = "internal"
      primary                                      = true
      subnet_id                                    = azurerm_subnet.app.id
      application_gateway_backend_address_pool_ids = local.gateway_pool_ids
      load_balancer_backend_address_pool_ids       = [azurerm_lb_backend_address_pool.grpc.id]
    }
  }

  # The platform's own view of instance health, for repairs and rolling upgrades.
  extension {
    name      = "HealthExtension"
    publisher = "Microsoft.ManagedServices"
    type      = "ApplicationHealthLinux"
    # 1.0: binary health states (any 200 is Healthy). 2.0 is the rich-states mode, where a 200 must
    # carry {"ApplicationHealthState": "Healthy"} or the instance is Unknown; /gtg answers 200 with
    # an empty body (the contract), so 2.0 would leave every instance Unknown.
    type_handler_version       = "1.0"
    auto_upgrade_minor_version = true
    settings = jsonencode({
      protocol          = "http"
      port              = var.http_port
      requestPath       = var.health_check_path
      intervalInSeconds = var.probe_interval
      numberOfProbes    = var.probe_unhealthy_threshold
    })
  }

  # Azure Monitor Agent (observability.tf): ships the service's lines as the data collection rule
  # associated with this set says, authenticating as the instances' one identity (named, as
  # "Install and manage Azure Monitor Agent" says for a user-assigned identity). 1.x with minor and
  # automatic upgrades: the platform installs the newest 1.x and keeps it current.
  extension {
    name                       = "AzureMonitorLinuxAgent"
    publisher                  = "Microsoft.Azure.Monitor"
    type                       = "AzureMonitorLinuxAgent"
    type_handler_version       = "1.0"
    auto_upgrade_minor_version = true
    automatic_upgrade_enabled  = true
    settings = jsonencode({
      authentication = {
        managedIdentity = {
          identifier-name  = "mi_res_id"
          identifier-value = azurerm_user_assigned_identity.instances.id
        }
      }
    })
  }

  automatic_instance_repair {
    enabled      = true
    grace_period = "PT10M"
  }

  # Deletions (scale-in, repairs) post a Terminate scheduled event this long before they happen;
  # candidates-scheduled-events drains the service and then approves the event (so it rarely waits
  # the whole notice). Azure's minimum, 5 minutes, is far above the drain.
  termination_notification {
    enabled = true
    timeout = "PT5M"
  }

  # A new image (source_image_id) rolls through in batches of one instance. By default in place:
  # MaxSurge (new instances before old ones go) is a preview feature, off unless
  # rolling_upgrade_max_surge, and even then Azure falls back to in-place batches when the quota
  # check before a batch fails ("Rolling upgrades with MaxSurge on Virtual Machine Scale Sets").
  # So capacity is kept by the count instead: batches of one, and at least 3 instances
  # (instances_min), so that 2 serve while one is upgraded (precondition below).
  upgrade_mode = "Rolling"
  rolling_upgrade_policy {
    max_batch_instance_percent              = local.rolling_batch_percent
    max_unhealthy_instance_percent          = 50
    max_unhealthy_upgraded_instance_percent = 20
    pause_time_between_batches              = "PT30S"
    maximum_surge_instances_enabled         = var.rolling_upgrade_max_surge
    prioritize_unhealthy_instances_enabled  = true
  }

  scale_in {
    rule                   = "Default"
    force_deletion_enabled = false
  }

  boot_diagnostics {}

  lifecycle {
    # Autoscale owns the instance count after creation.
    ignore_changes = [instances]
    precondition {
      condition     = var.instances_min - local.rolling_batch_size >= 2
      error_message = "A rolling upgrade takes local.rolling_batch_size instances out at a time (in place: MaxSurge is a preview and falls back to in-place batches); instances_min must leave 2 serving."
    }
    precondition {
      condition     = local.image_id != ""
      error_message = "No image: set image_id, or run `packer build -only=azure-arm.azure` so that the manifest has one."
    }
  }

  # The first boot already finds its egress, its NSG and its Cosmos DB roles in place.
  depends_on = [
    azurerm_subnet_nat_gateway_association.app,
    azurerm_subnet_network_security_group_association.app,
    azurerm_cosmosdb_sql_role_assignment.data,
    azurerm_cosmosdb_sql_role_assignment.metadata,
  ]
}

resource "azurerm_monitor_autoscale_setting" "this" {
  name                = "${var.name}-autoscale"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  target_resource_id  = azurerm_linux_virtual_machine_scale_set.this.id
  tags                = local.tags

  profile {
    name = "requests-and-cpu"

    capacity {
      default = var.instances_default
      minimum = var.instances_min
      maximum = var.instances_max
    }

    # The signal that matters: requests per minute per healthy backend through the Application
    # Gateway (AvgRequestCountPerHealthyHost), the counterpart of AWS's ALBRequestCountPerTarget.
    # Scale-out rules act when any one fires; scale-in only when all scale-in rules agree, and a
    # rule whose metric has no datapoints in its window does not agree. The gateway's request
    # metrics may emit nothing at zero traffic, so a request-count scale-in rule could block
    # scale-in exactly when the set is idle. Scale-in therefore rests on CPU alone, a VM metric
    # that has a value every minute whatever the traffic; fewer requests mean less CPU.
    rule {
      metric_trigger {
        metric_name        = "AvgRequestCountPerHealthyHost"
        metric_resource_id = azurerm_application_gateway.rest.id
        metric_namespace   = "microsoft.network/applicationgateways"
        time_grain         = "PT1M"
        statistic          = "Average"
        time_window        = "PT5M"
        time_aggregation   = "Average"
        operator           = "GreaterThan"
        threshold          = local.requests_per_host_per_minute
      }
      scale_action {
        direction = "Increase"
        type      = "ChangeCount"
        value     = "1"
        cooldown  = "PT5M"
      }
    }

    # CPU: the backstop for scale-out, the whole scale-in signal, and what `STRESS=1` drives.
    rule {
      metric_trigger {
        metric_name        = "Percentage CPU"
        metric_resource_id = azurerm_linux_virtual_machine_scale_set.this.id
        metric_namespace   = "microsoft.compute/virtualmachinescalesets"
        time_grain         = "PT1M"
        statistic          = "Average"
        time_window        = "PT5M"
        time_aggregation   = "Average"
        operator           = "GreaterThan"
        threshold          = var.scale_out_cpu
      }
      scale_action {
        direction = "Increase"
        type      = "ChangeCount"
        value     = "1"
        cooldown  = "PT5M"
      }
    }

    rule {
      metric_trigger {
        metric_name        = "Percentage CPU"
        metric_resource_id = azurerm_linux_virtual_machine_scale_set.this.id
        metric_namespace   = "microsoft.compute/virtualmachinescalesets"
        time_grain         = "PT1M"
        statistic          = "Average"
        time_window        = "PT10M"
        time_aggregation   = "Average"
        operator           = "LessThan"
        threshold          = var.scale_in_cpu
      }
      scale_action {
        direction = "Decrease"
        type      = "ChangeCount"
        value     = "1"
        cooldown  = "PT10M"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.scale_in_cpu * 2 <= var.scale_out_cpu
      error_message = "scale_in_cpu must be at most half of scale_out_cpu, or removing an instance pushes the rest over the scale-out threshold (flapping)."
    }
    precondition {
      condition     = var.instances_min <= var.instances_default && var.instances_default <= var.instances_max
      error_message = "Need instances_min <= instances_default <= instances_max."
    }
  }
}
