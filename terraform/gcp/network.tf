# APIs, a custom VPC with one subnet (Private Google Access: Firestore without NAT), Cloud NAT for
# other egress, and firewall rules that admit only Google's load balancers and health checks on
# 8000 and the subnet on 50051 and 9090.

locals {
  # Google Front Ends and health checkers (external Application LB, internal passthrough LB probes).
  google_lb_ranges     = ["130.211.0.0/22", "35.191.0.0/16"]
  iap_range            = "35.235.240.0/20"
  grpc_client_cidrs    = length(var.grpc_client_cidrs) > 0 ? var.grpc_client_cidrs : [var.subnet_cidr]
  metrics_scrape_cidrs = length(var.metrics_scrape_cidrs) > 0 ? var.metrics_scrape_cidrs : [var.subnet_cidr]
  instance_tag         = "${var.name}-instance"
}

# IAP and OS Login carry every SSH session (validate.sh, calibrate.sh, STRESS=1, Packer's build VM:
# its docs require the IAP API); Monitoring holds the load balancer's request count, the
# autoscaler's signal (compute.tf). apply.sh enables Compute, IAP and OS Login before Packer runs.
resource "google_project_service" "apis" {
  for_each = toset([
    "compute.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iap.googleapis.com",
    "oslogin.googleapis.com",
    "monitoring.googleapis.com",
    "logging.googleapis.com",
  ])
  service = each.value
  # Other stacks in the project may use them too.
  disable_on_destroy = false
}

resource "google_compute_network" "this" {
  name                    = "${var.name}-vpc"
  auto_create_subnetworks = false
  depends_on              = [google_project_service.apis]
}

resource "google_compute_subnetwork" "this" {
  name                     = "${var.name}-subnet"
  network                  = google_compute_network.this.id
  region                   = var.region
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "this" {
  name    = "${var.name}-router"
  network = google_compute_network.this.id
  region  = var.region
}

resource "google_compute_router_nat" "this" {
  name                               = "${var.name}-nat"
  router                             = google_compute_router.this.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

resource "google_compute_firewall" "rest_from_google_lb" {
  name          = "${var.name}-allow-rest-from-google-lb"
  description   = "REST and /gtg from the external Application LB's front ends and Google's health checkers"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = local.google_lb_ranges
  target_tags   = [local.instance_tag]

  allow {
    protocol = "tcp"
    ports    = [tostring(var.http_port)]
  }
}

# The internal passthrough load balancer keeps client addresses: the rule names the clients.
resource "google_compute_firewall" "grpc_from_clients" {
  name          = "${var.name}-allow-grpc-internal"
  description   = "gRPC from internal clients through the internal passthrough load balancer"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = local.grpc_client_cidrs
  target_tags   = [local.instance_tag]

  allow {
    protocol = "tcp"
    ports    = [tostring(var.grpc_port)]
  }
}

resource "google_compute_firewall" "metrics_from_subnet" {
  name          = "${var.name}-allow-metrics-internal"
  description   = "Prometheus scrapes of /metrics from inside the network"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = local.metrics_scrape_cidrs
  target_tags   = [local.instance_tag]

  allow {
    protocol = "tcp"
    ports    = [tostring(var.metrics_port)]
  }
}

resource "google_compute_firewall" "ssh_from_iap" {
  count         = var.iap_ssh ? 1 : 0
  name          = "${var.name}-allow-ssh-from-iap"
  description   = "SSH through Identity-Aware Proxy only (who may use it is IAM's and OS Login's decision)"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = [local.iap_range]
  target_tags   = [local.instance_tag]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}
