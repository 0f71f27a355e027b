# The service: the OCI image of candidate-server (serverless/cloud-run/build-image.py) in
# single-port mode, REST and gRPC on Cloud Run's PORT, HTTP/2 end to end, Firestore through its
# own service account, configured like the binary (docs/configuration.md) from its environment.

locals {
  keys_dir = "/etc/candidates"
  env = merge({
    CANDIDATES_STORE                = "firestore"
    GOOGLE_CLOUD_PROJECT            = var.project_id
    CANDIDATES_FIRESTORE_DATABASE   = google_firestore_database.this.name
    CANDIDATES_FIRESTORE_COLLECTION = var.firestore_collection
    CANDIDATES_INSTANCE_METADATA    = "gcp"
    # Set in the image too; here so that the service does not depend on how the image was built.
    CANDIDATES_SINGLE_PORT  = "true"
    CANDIDATES_LOG_FORMAT   = "json"
    CANDIDATES_API_EXPLORER = "false"
    # Never open for writes: the key file (keys.tf, mounted below) and writes need candidates.write.
    CANDIDATES_API_KEYS_FILE = "${local.keys_dir}/api-keys"
    CANDIDATES_AUTH_WRITE    = "scope"
    CANDIDATES_AUTH_READ     = var.auth_read
    }, {
    for key, value in {
      CANDIDATES_OIDC_ISSUER      = var.oidc_issuer
      CANDIDATES_OIDC_AUDIENCE    = var.oidc_audience
      CANDIDATES_OIDC_SCOPE_CLAIM = var.oidc_scope_claim
    } : key => value if value != ""
  })
}

resource "google_cloud_run_v2_service" "this" {
  name                = var.name
  location            = var.region
  description         = "candidates REST and gRPC API (candidate-server --single-port), HTTP/2 end to end"
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  # Public (var.public): no Cloud Run invoker check, see the note at the end of this file.
  invoker_iam_disabled = var.public

  template {
    service_account                  = google_service_account.service.email
    max_instance_request_concurrency = var.concurrency
    timeout                          = "${var.timeout_seconds}s"

    scaling {
      # Scale to zero: pay per request.
      min_instance_count = 0
      max_instance_count = var.max_instances
    }

    volumes {
      name = "api-keys"
      secret {
        secret       = google_secret_manager_secret.api_keys.secret_id
        default_mode = 292 # 0444
        items {
          path    = "api-keys"
          version = google_secret_manager_secret_version.api_keys.version
        }
      }
    }

    containers {
      image = var.image

      # "h2c": Cloud Run sends HTTP/2 cleartext to the container, end to end (gRPC needs it), and
      # passes container_port to the container as PORT, which --single-port listens on. PORT
      # itself is Cloud Run's to set (a reserved variable), never in `env`.
      ports {
        name           = "h2c"
        container_port = var.port
      }

      dynamic "env" {
        for_each = local.env
        content {
          name  = env.key
          value = env.value
        }
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        # CPU only while requests are in flight (request-based billing), and more of it while the
        # instance starts.
        cpu_idle          = true
        startup_cpu_boost = true
      }

      # Takes requests only once /gtg answers 200, i.e. once the store answers (503 while it
      # opens). An HTTP probe speaks HTTP/1.1, which the single port serves beside h2c. At most
      # 24 x 10 s = 240 s, Cloud Run's ceiling for a startup probe.
      startup_probe {
        period_seconds    = 10
        timeout_seconds   = 5
        failure_threshold = 24
        http_get {
          path = "/gtg"
        }
      }

      volume_mounts {
        name       = "api-keys"
        mount_path = local.keys_dir
      }
    }
  }

  # The role and the secret's access before the first revision starts.
  depends_on = [google_project_iam_member.firestore, google_secret_manager_secret_iam_member.api_keys]

  lifecycle {
    precondition {
      condition     = var.image != ""
      error_message = "image is empty: push the image first (scripts/gcp/serverless-apply.sh does: a targeted apply of the repository, the push, then this)."
    }
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
}

# Public invocation (var.public, default true) is `invoker_iam_disabled` on the service (above), not
# an allUsers run.invoker binding: organisations that enforce Domain Restricted Sharing
# (iam.allowedPolicyMemberDomains, on by default for organisations created since 2024) refuse
# allUsers members, and Cloud Run documents turning the invoker check off for exactly that case
# ("Allowing public (unauthenticated) access"). The REST contract's reads are public, and the
# service checks keys and tokens itself; Cloud Run's own check would want a Google ID token in
# Authorization, where the service's clients send their API key or OIDC token.
