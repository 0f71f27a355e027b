# The validation host: a small VM in the instances' subnet but in no backend pool. validate.sh runs
# `candidatectl check` over gRPC from it through the internal load balancer. It cannot run on a
# scale set instance: a flow from a backend to its own internal load balancer's frontend that is
# mapped back to the same instance fails (Azure Load Balancer limitations), so about 1 in n checks
# would fail with n instances. It boots the same image (candidatectl is on it); with no user-data
# its candidates.service refuses to start, as designed.

resource "azurerm_network_interface" "validation" {
  count               = var.validation_host ? 1 : 0
  name                = "${var.name}-validation-nic"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  tags                = local.tags

  ip_configuration {
    name                          = "internal"
    subnet_id                     = azurerm_subnet.app.id
    private_ip_address_allocation = "Dynamic"
  }
}

resource "azurerm_linux_virtual_machine" "validation" {
  count                           = var.validation_host ? 1 : 0
  name                            = "${var.name}-validation"
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
  size                            = var.validation_host_size
  source_image_id                 = local.image_id
  admin_username                  = "azureuser"
  disable_password_authentication = true
  network_interface_ids           = [azurerm_network_interface.validation[0].id]
  encryption_at_host_enabled      = var.encryption_at_host
  # Run-command needs the VM agent; no extensions beyond it.
  allow_extension_operations = true
  tags                       = merge(local.tags, { role = "validation" })
  #checkov:skip=CKV_AZURE_50:The VM agent is needed for `az vm run-command`, which is how validate.sh uses this host; no extension is installed.

  admin_ssh_key {
    username   = "azureuser"
    public_key = trimspace(var.admin_ssh_public_key)
  }

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "StandardSSD_LRS"
  }

  boot_diagnostics {}

  depends_on = [azurerm_subnet_nat_gateway_association.app, azurerm_subnet_network_security_group_association.app]
}
