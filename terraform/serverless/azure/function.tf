# The function app: serverless/azure-functions' `handler` as a custom handler on the Flex
# Consumption plan, configured like the binary (docs/configuration.md) from its app settings.
#
# Why Flex Consumption (FC1) and not the Linux Consumption plan (Y1): Microsoft names Flex
# Consumption the recommended serverless plan, and Linux Consumption is retired on 30 September
# 2028; Flex Consumption's stack definitions include the custom handler ("custom", runtime version
# 1.0, for sku FC1: the Functions stacks API, as Az.Functions ships it), and the provider's
# azurerm_function_app_flex_consumption accepts runtime_name "custom". On Flex Consumption the
# runtime is the site's functionAppConfig.runtime (runtime_name), not the FUNCTIONS_WORKER_RUNTIME
# app setting, which the plan does not accept (nor WEBSITE_RUN_FROM_PACKAGE: the package is in the
# deployment container, storage.tf).
#
# The API key file: the server reads keys from a file only, and a function app has no boot step to
# write one; the key lines (digests, access.tf) go in CANDIDATES_API_KEY_LINES, as on Lambda,
# which the adapter writes to a temporary file at start (candidates_server::host::
# api_key_lines_from_env, in both adapters). The digests are not secrets, so a plain
# app setting, not a Key Vault reference (Microsoft's practice for secrets): the one secret, the
# write key, never reaches the app.

resource "azurerm_service_plan" "this" {
  name                = "${var.name}-plan"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = local.tags
  #checkov:skip=CKV_AZURE_211:Flex Consumption has no plan SKU tiers; instances scale per app.
  #checkov:skip=CKV_AZURE_212:Flex Consumption scales out itself (max_instances); no worker count.
  #checkov:skip=CKV_AZURE_225:Zone redundancy is an option of Flex Consumption in some regions; not on here.
}

locals {
  app_settings = merge({
    CANDIDATES_STORE      = "cosmos"
    COSMOS_ENDPOINT       = azurerm_cosmosdb_account.this.endpoint
    COSMOS_DATABASE_NAME  = azurerm_cosmosdb_sql_database.this.name
    COSMOS_CONTAINER_NAME = azurerm_cosmosdb_sql_container.candidates.name
    # The account's one region (the SDK's preferred region; the server's default is eastus).
    CANDIDATES_COSMOS_REGION = var.location
    CANDIDATES_LOG_FORMAT    = "json"
    CANDIDATES_API_EXPLORER  = "false"
    # Never open for writes: writes need a credential with candidates.write.
    CANDIDATES_API_KEY_LINES = join("\n", local.api_key_lines)
    CANDIDATES_AUTH_WRITE    = "scope"
    CANDIDATES_AUTH_READ     = var.auth_read
    # The host's storage through the app's identity (no connection string, no key). Without the
    # credential setting the host looks for a connection string and does not start (Microsoft's
    # Flex Consumption samples set both).
    AzureWebJobsStorage__accountName = azurerm_storage_account.functions.name
    AzureWebJobsStorage__credential  = "managedidentity"
    # Application Insights with Entra ID ingestion (monitoring.tf).
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "Authorization=AAD"
    }, {
    for key, value in {
      CANDIDATES_OIDC_ISSUER      = var.oidc_issuer
      CANDIDATES_OIDC_AUDIENCE    = var.oidc_audience
      CANDIDATES_OIDC_SCOPE_CLAIM = var.oidc_scope_claim
    } : key => value if value != ""
  })
}

resource "azurerm_function_app_flex_consumption" "this" {
  name                = "${var.name}-${local.suffix}"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  service_plan_id     = azurerm_service_plan.this.id

  runtime_name    = "custom"
  runtime_version = "1.0"

  # The package: the deployment container, read with the app's own identity.
  storage_container_type      = "blobContainer"
  storage_container_endpoint  = "${azurerm_storage_account.functions.primary_blob_endpoint}${azurerm_storage_container.deployments.name}"
  storage_authentication_type = "SystemAssignedIdentity"

  instance_memory_in_mb  = var.instance_memory_mb
  maximum_instance_count = var.max_instances
  http_concurrency       = var.http_concurrency

  https_only                                     = true
  public_network_access_enabled                  = true
  webdeploy_publish_basic_authentication_enabled = false
  client_certificate_enabled                     = false

  identity {
    type = "SystemAssigned"
  }

  app_settings = local.app_settings

  site_config {
    minimum_tls_version                    = "1.2"
    scm_minimum_tls_version                = "1.2"
    http2_enabled                          = true
    application_insights_connection_string = azurerm_application_insights.this.connection_string
    # No cors block: the service answers CORS itself (CANDIDATES_CORS_ALLOW_ORIGINS).
  }

  tags = local.tags

  # access.tf's variables, checked as modules/instance-config validates them for the other roots.
  lifecycle {
    precondition {
      condition     = alltrue([for line in var.api_key_lines : can(regex("^[0-9a-fA-F]{64} candidates\\.(read|write)(,candidates\\.(read|write))? [A-Za-z0-9._-]{1,64}$", line))])
      error_message = "Each API key line is `<64 hex digits> <scopes> <name>`: the SHA-256 digest of a key (never the key), candidates.read and/or candidates.write joined by a comma, and a name of 1 to 64 of [A-Za-z0-9._-]."
    }
    precondition {
      condition     = length(distinct([for line in local.api_key_lines : lower(split(" ", line)[0])])) == length(local.api_key_lines)
      error_message = "Two API key lines hold the same digest: the server refuses the whole file."
    }
    precondition {
      condition     = contains(["anyone", "authenticated", "scope"], var.auth_read)
      error_message = "auth_read is anyone, authenticated or scope."
    }
    precondition {
      condition     = (var.oidc_issuer == "" || startswith(var.oidc_issuer, "https://")) && (var.oidc_issuer == "") == (var.oidc_audience == "")
      error_message = "oidc_issuer is an https:// URL, and goes with oidc_audience (the server refuses an issuer without an audience)."
    }
  }

  #checkov:skip=CKV_AZURE_56:No App Service authentication: the service applies its own key or token policy (docs/security.md), as behind the scaling groups' load balancers.
  #checkov:skip=CKV_AZURE_159:Public on purpose: the REST contract's reads are public; the service checks keys and tokens itself.
}

# azurerm_function_app_flex_consumption writes the app setting AzureWebJobsStorage, a connection
# string, whatever storage_authentication_type says (the provider's
# ExpandSiteConfigFunctionFlexConsumptionApp appends it whenever the storage string is not empty;
# with the app's identity its AccountKey is empty: provider issues #29693, #30732, #33211), on every
# apply that updates the app. The host reads it before AzureWebJobsStorage__accountName, and the
# account takes no shared keys, so the host could not reach its storage. It is removed after every
# apply that changed the app, by Terraform itself, so that a hand-run apply cannot leave it behind
# (needs the Azure CLI, logged in, where Terraform runs: the scripts' check_azure does that).
resource "terraform_data" "drop_keyless_storage_string" {
  triggers_replace = azurerm_function_app_flex_consumption.this

  provisioner "local-exec" {
    command = "az functionapp config appsettings delete --resource-group \"$GROUP\" --name \"$APP\" --setting-names AzureWebJobsStorage --output none"
    environment = {
      GROUP = azurerm_resource_group.this.name
      APP   = azurerm_function_app_flex_consumption.this.name
    }
  }
}
