# Resource group, a virtual network with two subnets (instances; Application Gateway), a NAT
# gateway for the instances' egress (they have no public addresses and no default outbound
# access), and NSGs that admit only the load balancers and the virtual network.

locals {
  tags                 = merge(var.tags, { application = "candidates", deployment = var.name, managed-by = "terraform" })
  grpc_client_cidrs    = length(var.grpc_client_cidrs) > 0 ? var.grpc_client_cidrs : [var.vnet_cidr]
  metrics_scrape_cidrs = length(var.metrics_scrape_cidrs) > 0 ? var.metrics_scrape_cidrs : [var.vnet_cidr]
}

resource "azurerm_resource_group" "this" {
  name     = "${var.name}-rg"
  location = var.location
  tags     = local.tags
}

resource "azurerm_virtual_network" "this" {
  name                = "${var.name}-vnet"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  address_space       = [var.vnet_cidr]
  tags                = local.tags
}

resource "azurerm_subnet" "app" {
  name                            = "${var.name}-app"
  resource_group_name             = azurerm_resource_group.this.name
  virtual_network_name            = azurerm_virtual_network.this.name
  address_prefixes                = [var.app_subnet_cidr]
  default_outbound_access_enabled = false
  # Cosmos DB admits this subnet only (the account's virtual network filter).
  service_endpoints = ["Microsoft.AzureCosmosDB"]
}

resource "azurerm_subnet" "gateway" {
  name                 = "${var.name}-appgw"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [var.gateway_subnet_cidr]
}

resource "azurerm_public_ip" "nat" {
  name                = "${var.name}-nat-ip"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  allocation_method   = "Static"
  sku                 = "Standard"
  tags                = local.tags
}

resource "azurerm_nat_gateway" "this" {
  name                    = "${var.name}-nat"
  resource_group_name     = azurerm_resource_group.this.name
  location                = azurerm_resource_group.this.location
  sku_name                = "Standard"
  idle_timeout_in_minutes = 10
  tags                    = local.tags
}

resource "azurerm_nat_gateway_public_ip_association" "this" {
  nat_gateway_id       = azurerm_nat_gateway.this.id
  public_ip_address_id = azurerm_public_ip.nat.id
}

resource "azurerm_subnet_nat_gateway_association" "app" {
  subnet_id      = azurerm_subnet.app.id
  nat_gateway_id = azurerm_nat_gateway.this.id
}

# --- instances' NSG: the gateway and LB probes reach 8000, the VNet reaches 50051 and 9090 -----

resource "azurerm_network_security_group" "app" {
  name                = "${var.name}-app-nsg"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  tags                = local.tags
}

resource "azurerm_network_security_rule" "app_rest_from_gateway" {
  name                        = "AllowRestFromAppGateway"
  description                 = "REST and its probe from the Application Gateway's subnet"
  priority                    = 100
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = tostring(var.http_port)
  source_address_prefix       = var.gateway_subnet_cidr
  destination_address_prefix  = var.app_subnet_cidr
  resource_group_name         = azurerm_resource_group.this.name
  network_security_group_name = azurerm_network_security_group.app.name
}

resource "azurerm_network_security_rule" "app_probe_from_lb" {
  name                        = "AllowGtgProbeFromLoadBalancer"
  description                 = "/gtg probes of the internal gRPC load balancer"
  priority                    = 110
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = tostring(var.http_port)
  source_address_prefix       = "AzureLoadBalancer"
  destination_address_prefix  = var.app_subnet_cidr
  resource_group_name         = azurerm_resource_group.this.name
  network_security_group_name = azurerm_network_security_group.app.name
}

resource "azurerm_network_security_rule" "app_grpc_from_vnet" {
  name                        = "AllowGrpcFromClients"
  description                 = "gRPC from internal clients (the internal load balancer keeps their addresses)"
  priority                    = 120
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = tostring(var.grpc_port)
  source_address_prefixes     = local.grpc_client_cidrs
  destination_address_prefix  = var.app_subnet_cidr
  resource_group_name         = azurerm_resource_group.this.name
  network_security_group_name = azurerm_network_security_group.app.name
}

resource "azurerm_network_security_rule" "app_metrics_from_vnet" {
  name                        = "AllowMetricsScrapes"
  description                 = "Prometheus scrapes of /metrics from inside the network"
  priority                    = 130
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = tostring(var.metrics_port)
  source_address_prefixes     = local.metrics_scrape_cidrs
  destination_address_prefix  = var.app_subnet_cidr
  resource_group_name         = azurerm_resource_group.this.name
  network_security_group_name = azurerm_network_security_group.app.name
}

# Azure's default rules admit the whole virtual network on every port (AllowVnetInBound, 65000):
# this rule ends the list before them.
resource "azurerm_network_security_rule" "app_deny_rest" {
  name                        = "DenyAllOtherInbound"
  description                 = "Nothing else: no SSH, no VNet-wide access"
  priority                    = 4000
  direction                   = "Inbound"
  access                      = "Deny"
  protocol                    = "*"
  source_port_range           = "*"
  destination_port_range      = "*"
  source_address_prefix       = "*"
  destination_address_prefix  = "*"
  resource_group_name         = azurerm_resource_group.this.name
  network_security_group_name = azurerm_network_security_group.app.name
}

resource "azurerm_subnet_network_security_group_association" "app" {
  subnet_id                 = azurerm_subnet.app.id
  network_security_group_id = azurerm_network_security_group.app.id
}

# --- Application Gateway's NSG: HTTP(S) from clients plus what the v2 SKU itself requires -----

resource "azurerm_network_security_group" "gateway" {
  name                = "${var.name}-appgw-nsg"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  tags                = local.tags
}

resource "azurerm_network_security_rule" "gateway_http" {
  name                   = "AllowHttpFromClients"
  description            = "HTTP to the Application Gateway's listener"
  priority               = 100
  direction              = "Inbound"
  access                 = "Allow"
  protocol               = "Tcp"
  source_port_range      = "*"
  destination_port_range = "80"
  # Everyone is the service tag Internet, which only the singular prefix takes: the plural list
  # accepts addresses and ranges only (SecurityRuleParameterContainsUnsupportedValue otherwise).
  source_address_prefix       = length(var.lb_ingress_cidrs) == 0 ? "Internet" : null
  source_address_prefixes     = length(var.lb_ingress_cidrs) > 0 ? var.lb_ingress_cidrs : null
  destination_address_prefix  = var.gateway_subnet_cidr
  resource_group_name         = azurerm_resource_group.this.name
  network_security_group_name = azurerm_network_security_group.gateway.name
  #checkov:skip=CKV_AZURE_160:This is the public REST listener (the original's port 80); lb_ingress_cidrs narrows it.
}

# Only with HTTPS (load_balancers.tf): the same clients on 443.
resource "azurerm_network_security_rule" "gateway_https" {
  count                       = local.https_enabled ? 1 : 0
  name                        = "AllowHttpsFromClients"
  description                 = "HTTPS to the Application Gateway's listener"
  priority                    = 101
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = "443"
  source_address_prefix       = length(var.lb_ingress_cidrs) == 0 ? "Internet" : null
  source_address_prefixes     = length(var.lb_ingress_cidrs) > 0 ? var.lb_ingress_cidrs : null
  destination_address_prefix  = var.gateway_subnet_cidr
  resource_group_name         = azurerm_resource_group.this.name
  network_security_group_name = azurerm_network_security_group.gateway.name
  #checkov:skip=CKV_AZURE_160:Not port 80: the check flags any rule open to the internet; this is the public HTTPS listener, narrowed by lb_ingress_cidrs.
}

resource "azurerm_network_security_rule" "gateway_manager" {
  name                        = "AllowGatewayManager"
  description                 = "Application Gateway v2 infrastructure traffic (required by Azure)"
  priority                    = 110
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = "65200-65535"
  source_address_prefix       = "GatewayManager"
  destination_address_prefix  = "*"
  resource_group_name         = azurerm_resource_group.this.name
  network_security_group_name = azurerm_network_security_group.gateway.name
}

resource "azurerm_network_security_rule" "gateway_azure_lb" {
  name                        = "AllowAzureLoadBalancer"
  description                 = "Azure's load balancer probes of the gateway (required by Azure)"
  priority                    = 120
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "*"
  source_port_range           = "*"
  destination_port_range      = "*"
  source_address_prefix       = "AzureLoadBalancer"
  destination_address_prefix  = "*"
  resource_group_name         = azurerm_resource_group.this.name
  network_security_group_name = azurerm_network_security_group.gateway.name
}

resource "azurerm_subnet_network_security_group_association" "gateway" {
  subnet_id                 = azurerm_subnet.gateway.id
  network_security_group_id = azurerm_network_security_group.gateway.id
}
