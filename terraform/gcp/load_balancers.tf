# REST: a global external Application Load Balancer on 80 to the group's named port http (8000);
# with var.domains, HTTPS on 443 with a Google-managed certificate, and 80 only redirects to it.
# gRPC: an internal passthrough Network Load Balancer on 50051. Both check GET /gtg on 8000, and
# both drain a leaving instance for the service's drain period plus grace before the group deletes
# it; the VM's ACPI shutdown then stops candidates.service (SIGTERM, drain, exit) within systemd's
# TimeoutStopSec.

locals {
  connection_draining = var.drain_period_seconds + var.shutdown_grace_seconds
  https_enabled       = length(var.domains) > 0
}

resource "google_compute_health_check" "gtg" {
  depends_on          = [google_project_service.apis]
  name                = "${var.name}-gtg"
  check_interval_sec  = var.health_check_interval
  timeout_sec         = 5
  healthy_threshold   = 2
  unhealthy_threshold = var.unhealthy_threshold

  # Port 8000 for both load balancers: the gRPC one cannot speak gRPC health, and /gtg carries
  # the same readiness and drain state.
  http_health_check {
    port         = var.http_port
    request_path = var.health_check_path
  }

  log_config {
    enable = true
  }

  lifecycle {
    precondition {
      condition     = var.health_check_interval * var.unhealthy_threshold <= var.drain_period_seconds
      error_message = "The drain period must cover interval x unhealthy threshold, or the load balancer still routes to a stopping instance."
    }
  }
}

resource "google_compute_global_address" "rest" {
  name       = "${var.name}-rest-ip"
  depends_on = [google_project_service.apis]
}

resource "google_compute_backend_service" "rest" {
  name                            = "${var.name}-rest"
  load_balancing_scheme           = "EXTERNAL_MANAGED"
  protocol                        = "HTTP"
  port_name                       = "http"
  timeout_sec                     = 30
  health_checks                   = [google_compute_health_check.gtg.id]
  connection_draining_timeout_sec = local.connection_draining

  # RATE, not UTILIZATION: the same group is a backend of the internal passthrough load balancer,
  # which must use CONNECTION, and UTILIZATION cannot share an instance group with it. The rate
  # only shapes balancing (it is a target, not a cap); the autoscaler reads the load balancer's
  # request count instead (compute.tf), since a group behind two backend services cannot be
  # scaled on load-balancing utilisation.
  backend {
    group                 = google_compute_region_instance_group_manager.this.instance_group
    balancing_mode        = "RATE"
    max_rate_per_instance = var.target_requests_per_instance_per_second
    capacity_scaler       = 1
  }

  log_config {
    enable      = true
    sample_rate = 0.1
  }

  depends_on = [google_project_service.apis]
}

resource "google_compute_url_map" "rest" {
  name            = "${var.name}-rest"
  default_service = google_compute_backend_service.rest.id
  depends_on      = [google_project_service.apis]
}

# With HTTPS, port 80 answers every request with a redirect to the same URL over HTTPS and never
# reaches the backend. A URL map with default_url_redirect may set no default_service, and
# https_redirect is allowed only on a map behind a target HTTP proxy (google_compute_url_map).
resource "google_compute_url_map" "http_redirect" {
  count      = local.https_enabled ? 1 : 0
  name       = "${var.name}-rest-redirect"
  depends_on = [google_project_service.apis]

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT" # 301
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "rest" {
  name       = "${var.name}-rest"
  url_map    = local.https_enabled ? google_compute_url_map.http_redirect[0].id : google_compute_url_map.rest.id
  depends_on = [google_project_service.apis]
}

resource "google_compute_global_forwarding_rule" "rest" {
  name                  = "${var.name}-rest"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  target                = google_compute_target_http_proxy.rest.id
  ip_address            = google_compute_global_address.rest.id
  port_range            = "80"
}

# Google issues the certificate only once every domain resolves (DNS A record) to the forwarding
# rule's address and the load balancer serves it: until then the status is PROVISIONING and HTTPS
# handshakes fail (docs/deploy-gcp.md, HTTPS). The domains cannot change in place (ForceNew), and
# the proxy still holds the old certificate while Terraform replaces it: create_before_destroy,
# with a name that changes with the domains (the provider has no name_prefix here, and an omitted
# name is refused by the API). A certificate Google gave up on (PROVISIONING_FAILED_PERMANENTLY,
# RENEWAL_FAILED: "delete and create a new managed SslCertificate resource") cannot be replaced
# with -replace, whose replacement would take the same name: var.certificate_revision renames it.
resource "google_compute_managed_ssl_certificate" "rest" {
  count      = local.https_enabled ? 1 : 0
  name       = "${var.name}-${substr(sha256(jsonencode(var.domains)), 0, 16)}${var.certificate_revision == 0 ? "" : "-${var.certificate_revision}"}"
  depends_on = [google_project_service.apis]

  managed {
    domains = var.domains
  }

  lifecycle {
    create_before_destroy = true
  }
}

# TLS 1.2 or later with the MODERN profile's ciphers (without a policy the proxy accepts TLS 1.0).
resource "google_compute_ssl_policy" "rest" {
  count           = local.https_enabled ? 1 : 0
  name            = "${var.name}-rest"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
  depends_on      = [google_project_service.apis]
}

resource "google_compute_target_https_proxy" "rest" {
  count            = local.https_enabled ? 1 : 0
  name             = "${var.name}-rest-https"
  url_map          = google_compute_url_map.rest.id
  ssl_certificates = [google_compute_managed_ssl_certificate.rest[0].id]
  ssl_policy       = google_compute_ssl_policy.rest[0].id
}

resource "google_compute_global_forwarding_rule" "rest_https" {
  count                 = local.https_enabled ? 1 : 0
  name                  = "${var.name}-rest-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  target                = google_compute_target_https_proxy.rest[0].id
  ip_address            = google_compute_global_address.rest.id
  port_range            = "443"
}

resource "google_compute_region_backend_service" "grpc" {
  name                            = "${var.name}-grpc"
  region                          = var.region
  load_balancing_scheme           = "INTERNAL"
  protocol                        = "TCP"
  health_checks                   = [google_compute_health_check.gtg.id]
  connection_draining_timeout_sec = local.connection_draining

  backend {
    group          = google_compute_region_instance_group_manager.this.instance_group
    balancing_mode = "CONNECTION"
  }
}

resource "google_compute_forwarding_rule" "grpc" {
  name                  = "${var.name}-grpc"
  region                = var.region
  load_balancing_scheme = "INTERNAL"
  backend_service       = google_compute_region_backend_service.grpc.id
  ip_protocol           = "TCP"
  ports                 = [tostring(var.grpc_port)]
  network               = google_compute_network.this.id
  subnetwork            = google_compute_subnetwork.this.id
}
