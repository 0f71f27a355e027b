# REST: an Application Gateway (Standard_v2) on 80 to the instances' 8000. gRPC: an internal
# Standard Load Balancer on 50051. Why this pair: README "Deploy to Azure".

locals {
  gateway_pool     = "vmss"
  gateway_settings = "rest"
  gateway_probe    = "gtg"
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

resource "azurerm_application_gateway" "rest" {
  name                = "${var.name}-appgw"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  zones               = var.zones
  tags                = local.tags
  #checkov:skip=CKV_AZURE_120:WAF_v2 costs about twice Standard_v2; put a WAF policy in front when the API is exposed to untrusted clients.
  #checkov:skip=CKV_AZURE_218:HTTPS needs a certificate in Key Vault and a domain; this deployment keeps the original's HTTP listener.
  #checkov:skip=CKV_AZURE_217:As CKV_AZURE_218: no certificate, so no HTTPS listener to require.

  sku {
    name = "Standard_v2"
    tier = "Standard_v2"
  }

  autoscale_configuration {
    min_capacity = 1
    max_capacity = 4
  }

  ssl_policy {
    policy_type = "Predefined"
    policy_name = "AppGwSslPolicy20220101"
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

  request_routing_rule {
    name                       = "rest"
    priority                   = 100
    rule_type                  = "Basic"
    http_listener_name         = "http"
    backend_address_pool_name  = local.gateway_pool
    backend_http_settings_name = local.gateway_settings
  }

  lifecycle {
    precondition {
      condition     = var.probe_interval * var.probe_unhealthy_threshold <= var.drain_period_seconds
      error_message = "The drain period must cover probe interval x unhealthy threshold, or the gateway still routes to a stopping instance."
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
