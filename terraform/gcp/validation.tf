# The validation host: a small VM in the subnet but in no instance group, from which validate.sh
# runs `candidatectl check` over gRPC through the internal passthrough load balancer. Not from a
# backend: Google's guest agent installs a local route for the load balancer's address on every
# backend, so a backend's connection to it is answered by itself and the load balancer is never
# tested. It boots the same image (candidatectl is on it); with no user-data its
# candidates.service refuses to start, as designed.

resource "google_compute_instance" "validation" {
  count        = var.validation_host ? 1 : 0
  name         = "${var.name}-validation"
  description  = "validate.sh's gRPC client outside the instance group"
  machine_type = var.validation_host_machine_type
  zone         = local.zones[0]
  #checkov:skip=CKV_GCP_38:A stateless probe host holding no data; its disk is encrypted with Google-managed keys like the instances'.
  # The instances' tag: IAP SSH reaches it; it serves nothing (no configuration, no service).
  tags = [local.instance_tag]

  boot_disk {
    auto_delete = true
    initialize_params {
      image = local.image
      type  = "pd-balanced"
      size  = 10
    }
  }

  # No access_config: no external address (egress through Cloud NAT, SSH through IAP).
  network_interface {
    subnetwork = google_compute_subnetwork.this.id
  }

  # The instances' own service account rather than the project's default one (which has Editor on
  # many projects), with no OAuth scopes: nothing on this VM can get a token for any Google API,
  # and candidatectl needs none.
  service_account {
    email  = google_service_account.instances.email
    scopes = []
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  metadata = {
    enable-oslogin         = "TRUE"
    block-project-ssh-keys = "TRUE"
  }
}
