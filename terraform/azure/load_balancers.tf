# REST: an Application Gateway (Standard_v2) on 80 to the instances' 8000; with a domain and a Key
# Vault certificate (variables.tf, HTTPS), HTTPS on 443 to the same backend and 80 only redirects
# to it. gRPC: an internal Standard Load Balancer on 50051. Why this pair: README "Deploy to Azure".

locals {
  gateway_pool     = "vmss"
  gateway_settings = "rest"
  gateway_probe    = "gtg"
  https_enabled    = var.tls_certificate_key_vault_secret_id != ""
  # The listener the backend is served on; with HTTPS, port 80's listener only redirects.
  rest_listener = local.https_enabled ? "https" : "http"
  # The certificate's secret name, for a role assignment on that secret alone.
  tls_secret_name = local.https_enabled ? regex("/secrets/([0-9A-Za-z-]+)", var.tls_certificate_key_vault_secret_id)[0] : ""
  # In-flight requests to a leaving instance get the drain period plus the grace.
  drain_timeout = var.drain_period_seconds + var.shutdown_grace_seconds
}

resource "azurerm_public_ip" "gateway" {
  name                = "${var.name}-appgw-ip"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  allocation_method   = "Static"
  sku                 = "Standard"
  zones               = var.zones
  domain_name_label   = "${var.name}-${substr(md5(data.azurerm_client_config.current.subscription_id), 0, 6)}"
  tags                = local.tags
}

# The gateway's own identity, which reads the certificate from Key Vault (the instances' identity
# stays the only one on the scale set: cosmos.tf).
resource "azurerm_user_assigned_identity" "gateway" {
  count               = local.https_enabled ? 1 : 0
  name                = "${var.name}-appgw-id"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  tags                = local.tags
}

# RBAC vault: Key Vault Secrets User (read secret contents) on the certificate's secret only.
resource "azurerm_role_assignment" "gateway_certificate" {
  count                = local.https_enabled && var.tls_key_vault_authorization == "rbac" ? 1 : 0
  scope                = "${var.tls_key_vault_id}/secrets/${local.tls_secret_name}"
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.gateway[0].principal_id
  principal_type       = "ServicePrincipal"
}

# Key Vault applies a new role assignment only after a while: "it will take up to 10 minutes (600
# seconds) after role assignments is changed for role to be applied" (Azure RBAC for Key Vault,
# "Known limits and performance"). The gateway reads the certificate when it is created, and a
# read refused then fails the create (ApplicationGatewayKeyVaultSecretException, a Failed gateway
# that the next apply replaces). depends_on on the grant only orders the API calls, so the gateway
# also waits for this: once, when the grant is made or replaced (tls_rbac_propagation_seconds).
resource "terraform_data" "gateway_certificate_propagation" {
  count            = local.https_enabled && var.tls_key_vault_authorization == "rbac" ? 1 : 0
  triggers_replace = [azurerm_role_assignment.gateway_certificate[0].id]

  provisioner "local-exec" {
    command = "sleep ${var.tls_rbac_propagation_seconds}"
  }
}

# Access-policy vault: Get on secrets (an access policy cannot be narrower than the vault).
resource "azurerm_key_vault_access_policy" "gateway_certificate" {
  count              = local.https_enabled && var.tls_key_vault_authorization == "access_policy" ? 1 : 0
  key_vault_id       = var.tls_key_vault_id
  tenant_id          = azurerm_user_assigned_identity.gateway[0].tenant_id
  object_id          = azurerm_user_assigned_identity.gateway[0].principal_id
  secret_permissions = ["Get"]
}

resource "azurerm_application_gateway" "rest" {
  name                = "${var.name}-appgw"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  zones               = var.zones
  tags                = local.tags
  #checkov:skip=CKV_AZURE_120:WAF_v2 costs about twice Standard_v2; put a WAF policy in front when the API is exposed to untrusted clients.
  #checkov:skip=CKV_AZURE_218:AppGwSslPolicy20220101 (TLS 1.2 minimum, 1.3 on; a test holds every listener to 1.2 or later); the check accepts only its S variant, which also drops the ECDHE CBC suites.
  #checkov:skip=CKV_AZURE_217:The first listener is port 80, plain HTTP only without a certificate (domain, tls_certificate_key_vault_secret_id); with one it only redirects to the HTTPS listener.

  sku {
    name = "Standard_v2"
    tier = "Standard_v2"
  }

  autoscale_configuration {
    min_capacity = 1
    max_capacity = 4
  }

  # Minimum TLS 1.2 (TLS 1.3 on), for the whole gateway.
  ssl_policy {
    policy_type = "Predefined"
    policy_name = "AppGwSslPolicy20220101"
  }

  dynamic "identity" {
    for_each = local.https_enabled ? [1] : []
    content {
      type         = "UserAssigned"
      identity_ids = [azurerm_user_assigned_identity.gateway[0].id]
    }
  }

  # Versionless secret id: the gateway polls Key Vault and rotates to a renewed certificate.
  dynamic "ssl_certificate" {
    for_each = local.https_enabled ? [1] : []
    content {
      name                = "tls"
      key_vault_secret_id = var.tls_certificate_key_vault_secret_id
    }
  }

  gateway_ip_configuration {
    name      = "gateway"
    subnet_id = azurerm_subnet.gateway.id
  }

  frontend_ip_configuration {
    name                 = "public"
    public_ip_address_id = azurerm_public_ip.gateway.id
  }

  frontend_port {
    name = "http"
    port = 80
  }

  http_listener {
    name                           = "http"
    frontend_ip_configuration_name = "public"
    frontend_port_name             = "http"
    protocol                       = "Http"
  }

  dynamic "frontend_port" {
    for_each = local.https_enabled ? [1] : []
    content {
      name = "https"
      port = 443
    }
  }

  dynamic "http_listener" {
    for_each = local.https_enabled ? [1] : []
    content {
      name                           = "https"
      frontend_ip_configuration_name = "public"
      frontend_port_name             = "https"
      protocol                       = "Https"
      ssl_certificate_name           = "tls"
      host_name                      = var.domain
    }
  }

  # Port 80 with HTTPS: 301 to the same path and query on the HTTPS listener.
  dynamic "redirect_configuration" {
    for_each = local.https_enabled ? [1] : []
    content {
      name                 = "http-to-https"
      redirect_type        = "Permanent"
      target_listener_name = "https"
      include_path         = true
      include_query_string = true
    }
  }

  backend_address_pool {
    name = local.gateway_pool
  }

  backend_http_settings {
    name                  = local.gateway_settings
    port                  = var.http_port
    protocol              = "Http"
    cookie_based_affinity = "Disabled"
    request_timeout       = 30
    probe_name            = local.gateway_probe

    connection_draining {
      enabled           = true
      drain_timeout_sec = local.drain_timeout
    }
  }

  probe {
    name                = local.gateway_probe
    protocol            = "Http"
    host                = "127.0.0.1"
    path                = var.health_check_path
    interval            = var.probe_interval
    timeout             = 5
    unhealthy_threshold = var.probe_unhealthy_threshold

    # Only 200 is healthy (the gateway's default also accepts 3xx).
    match {
      status_code = ["200"]
    }
  }

  # Priorities: unique, 1 to 20000, required on v2 SKUs.
  request_routing_rule {
    name                       = "rest"
    priority                   = 100
    rule_type                  = "Basic"
    http_listener_name         = local.rest_listener
    backend_address_pool_name  = local.gateway_pool
    backend_http_settings_name = local.gateway_settings
  }

  dynamic "request_routing_rule" {
    for_each = local.https_enabled ? [1] : []
    content {
      name                        = "http-to-https"
      priority                    = 110
      rule_type                   = "Basic"
      http_listener_name          = "http"
      redirect_configuration_name = "http-to-https"
    }
  }

  # The gateway reads the certificate at creation: the grant comes first (and, for RBAC, has had
  # time to reach Key Vault).
  depends_on = [
    azurerm_role_assignment.gateway_certificate,
    terraform_data.gateway_certificate_propagation,
    azurerm_key_vault_access_policy.gateway_certificate,
  ]

  lifecycle {
    precondition {
      condition     = var.probe_interval * var.probe_unhealthy_threshold <= var.drain_period_seconds
      error_message = "The drain period must cover probe interval x unhealthy threshold, or the gateway still routes to a stopping instance."
    }
    # "Application Gateway currently supports only Key Vault accounts in the same subscription".
    precondition {
      condition     = var.tls_key_vault_id == "" || startswith(lower(var.tls_key_vault_id), lower("/subscriptions/${data.azurerm_client_config.current.subscription_id}/"))
      error_message = "The Key Vault (tls_key_vault_id) must be in the gateway's subscription: Application Gateway reads certificates from vaults of its own subscription only."
    }
  }
}

resource "azurerm_lb" "grpc" {
  name                = "${var.name}-grpc-lb"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  sku                 = "Standard"
  tags                = local.tags

  frontend_ip_configuration {
    name                          = "grpc"
    subnet_id                     = azurerm_subnet.app.id
    private_ip_address_allocation = "Dynamic"
    zones                         = var.zones
  }
}

resource "azurerm_lb_backend_address_pool" "grpc" {
  name            = "vmss"
  loadbalancer_id = azurerm_lb.grpc.id
}

# /gtg on the REST port: the same readiness and drain state as gRPC health, which the load
# balancer cannot speak.
resource "azurerm_lb_probe" "gtg" {
  name                = "gtg"
  loadbalancer_id     = azurerm_lb.grpc.id
  protocol            = "Http"
  port                = var.http_port
  request_path        = var.health_check_path
  interval_in_seconds = var.probe_interval
  probe_threshold     = var.probe_unhealthy_threshold
}

resource "azurerm_lb_rule" "grpc" {
  name                           = "grpc"
  loadbalancer_id                = azurerm_lb.grpc.id
  protocol                       = "Tcp"
  frontend_port                  = var.grpc_port
  backend_port                   = var.grpc_port
  frontend_ip_configuration_name = "grpc"
  backend_address_pool_ids       = [azurerm_lb_backend_address_pool.grpc.id]
  probe_id                       = azurerm_lb_probe.gtg.id
  # Long-lived HTTP/2 connections: a generous idle timeout, and RST (not silence) when it ends.
  idle_timeout_in_minutes = 30
  tcp_reset_enabled       = true
  disable_outbound_snat   = true
}
