# The instances: a shielded, address-less instance template from the Packer image and a regional
# managed instance group over three zones, autohealed on /gtg, replaced rolling (surge first) when
# the template changes, and autoscaled on the REST load balancer's request count (a per-group
# Cloud Monitoring metric; CPU as a backstop).

data "google_compute_zones" "available" {
  region     = var.region
  status     = "UP"
  depends_on = [google_project_service.apis]
}

locals {
  manifest_path = var.packer_manifest != "" ? var.packer_manifest : "${path.module}/../../packer/packer-manifest.json"
  manifest      = fileexists(local.manifest_path) ? jsondecode(file(local.manifest_path)) : { builds = [] }
  # Builds are appended, so the last googlecompute one is the newest; its artifact_id is the image name.
  manifest_images = [for build in local.manifest.builds : build.artifact_id if build.builder_type == "googlecompute"]
  # Always one concrete image, never a family path: the template records what it is given, so a
  # family path would stay the same string when the family gets a new image, and the group would
  # never roll. The family is resolved here (data source below), at plan time.
  image_from_family = var.image == "" && length(local.manifest_images) == 0
  image = (var.image != "" ? var.image :
    length(local.manifest_images) > 0 ? "projects/${var.project_id}/global/images/${local.manifest_images[length(local.manifest_images) - 1]}" :
  data.google_compute_image.family[0].self_link)
  zones = length(var.zones) > 0 ? var.zones : slice(sort(data.google_compute_zones.available.names), 0, 3)
}

# The newest non-deprecated image of the family, by name: a new image in the family changes
# local.image, hence the template, hence a rolling replacement.
data "google_compute_image" "family" {
  count      = local.image_from_family ? 1 : 0
  family     = var.image_family
  project    = var.project_id
  depends_on = [google_project_service.apis]
}

# The env file (store Firestore; the VM's service account authenticates). No drain watcher: the
# load balancers' connection draining and the ACPI shutdown cover scale-in (load_balancers.tf).
module "instance_config" {
  source                 = "../modules/instance-config"
  deployment             = "gcp/${var.name}"
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
    CANDIDATES_STORE                = "firestore"
    GOOGLE_CLOUD_PROJECT            = var.project_id
    CANDIDATES_FIRESTORE_DATABASE   = google_firestore_database.this.name
    CANDIDATES_FIRESTORE_COLLECTION = var.firestore_collection
    CANDIDATES_INSTANCE_METADATA    = "gcp"
  }
}

resource "google_compute_instance_template" "this" {
  name_prefix  = "${var.name}-"
  description  = "candidate-server on the Packer image, store Firestore"
  machine_type = var.machine_type
  tags         = [local.instance_tag]

  disk {
    source_image = local.image
    boot         = true
    auto_delete  = true
    disk_type    = "pd-balanced"
    disk_size_gb = 10
  }

  # No access_config: no external address. Egress is Cloud NAT; Google APIs are private access.
  network_interface {
    subnetwork = google_compute_subnetwork.this.id
  }

  service_account {
    email  = google_service_account.instances.email
    scopes = ["cloud-platform"] # IAM, not scopes, limits what it can do
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  metadata = {
    # Ubuntu's cloud-init reads user-data from the metadata server: it writes the env file before
    # candidates.service starts.
    user-data              = module.instance_config.user_data
    enable-oslogin         = "TRUE"
    block-project-ssh-keys = "TRUE"
  }

  scheduling {
    automatic_restart   = true
    on_host_maintenance = "MIGRATE"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Autohealing: more patient than the load balancer's check, so a brief blip does not recreate VMs.
resource "google_compute_health_check" "autohealing" {
  depends_on          = [google_project_service.apis]
  name                = "${var.name}-autohealing"
  check_interval_sec  = 10
  timeout_sec         = 5
  healthy_threshold   = 2
  unhealthy_threshold = 3

  http_health_check {
    port         = var.http_port
    request_path = var.health_check_path
  }

  log_config {
    enable = true
  }
}

resource "google_compute_region_instance_group_manager" "this" {
  name                      = "${var.name}-mig"
  base_instance_name        = var.name
  region                    = var.region
  distribution_policy_zones = local.zones

  version {
    instance_template = google_compute_instance_template.this.id
  }

  named_port {
    name = "http"
    port = var.http_port
  }

  named_port {
    name = "grpc"
    port = var.grpc_port
  }

  auto_healing_policies {
    health_check      = google_compute_health_check.autohealing.id
    initial_delay_sec = var.autohealing_initial_delay
  }

  # A new template (new image, new user-data) replaces instances proactively: new ones first
  # (one surge per zone, a regional group's minimum), none taken away before its replacement runs.
  update_policy {
    type                           = "PROACTIVE"
    minimal_action                 = "REPLACE"
    most_disruptive_allowed_action = "REPLACE"
    replacement_method             = "SUBSTITUTE"
    instance_redistribution_type   = "PROACTIVE"
    max_surge_fixed                = length(local.zones)
    max_unavailable_fixed          = 0
  }

  instance_lifecycle_policy {
    default_action_on_failure = "REPAIR"
  }

  # The autoscaler owns the size.
  lifecycle {
    ignore_changes = [target_size]
  }

  # No instance before its service account may use the database. GCP documents that a new grant
  # can take up to ~7 minutes to apply everywhere; the rest of that window is covered by the server
  # itself, which serves /gtg 503 and retries opening the store for up to 15 minutes
  # (--store-open-timeout) before it exits for autohealing to replace it.
  # The Ops Agent (the image's) writes logs and metrics from boot on: its two roles first.
  depends_on = [google_project_iam_member.firestore, google_project_iam_member.log_writer, google_project_iam_member.metric_writer]
}

resource "google_compute_region_autoscaler" "this" {
  name   = "${var.name}-autoscaler"
  region = var.region
  target = google_compute_region_instance_group_manager.this.id

  autoscaling_policy {
    min_replicas    = var.min_replicas
    max_replicas    = var.max_replicas
    cooldown_period = var.cooldown_seconds
    mode            = "ON"

    # The demo's and production's signal: requests per second through the REST load balancer,
    # one instance per target_requests_per_instance_per_second. Not load_balancing_utilization: the
    # group is a backend of two backend services (REST and the internal gRPC one), and the
    # autoscaler refuses to scale such a group on it (AutoscalerStatusDetails
    # MORE_THAN_ONE_BACKEND_SERVICE). A per-group metric instead: the filter names a resource type
    # other than gce_instance (the LB's forwarding rule) and the REST backend service, the
    # autoscaler sums the matching time series (every zone, every response code) and keeps
    # sum / single_instance_assignment instances. request_count is a DELTA count, read per second.
    # The autoscaler follows whichever signal asks for more instances, so CPU stays as the backstop
    # (and the `STRESS=1` demo's signal).
    metric {
      name                       = "loadbalancing.googleapis.com/https/request_count"
      filter                     = "resource.type = \"https_lb_rule\" AND resource.label.backend_target_name = \"${google_compute_backend_service.rest.name}\""
      single_instance_assignment = var.target_requests_per_instance_per_second
      type                       = "DELTA_PER_SECOND"
    }

    cpu_utilization {
      target = var.cpu_target
    }

    # Scale in at most one instance per 10 minutes: a dip in load does not shed capacity the next
    # burst needs.
    scale_in_control {
      time_window_sec = 600
      max_scaled_in_replicas {
        fixed = 1
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.min_replicas <= var.max_replicas && var.min_replicas >= 1
      error_message = "Need 1 <= min_replicas <= max_replicas."
    }
  }
}
