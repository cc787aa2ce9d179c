# The public edge: a CloudFront distribution in front of the API Gateway stage
# (modules/api), guarded by a CLOUDFRONT-scope web ACL. Nothing is cached: every
# answer is per caller. CloudFront adds the origin-verify header the API's own
# web ACL requires, so the API answers only requests that passed through here.
#
# The web ACL, its log group, the key that encrypts the logs and the access-log
# bucket are in us-east-1 (aws.us_east_1): CLOUDFRONT-scope web ACLs and their
# CloudWatch Logs destinations must be there, and one key then serves both logs.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  name       = "${var.resource_prefix}-edge"

  origin_id         = "api-gateway"
  waf_log_group     = "aws-waf-logs-${local.name}"
  waf_log_group_arn = "arn:${local.partition}:logs:us-east-1:${local.account_id}:log-group:${local.waf_log_group}"

  # CloudFront's access logs: where in the bucket, and who may deliver them
  # (this account's CloudWatch Logs delivery sources, in us-east-1).
  access_log_prefix    = "cloudfront"
  delivery_sources_arn = "arn:${local.partition}:logs:us-east-1:${local.account_id}:delivery-source:*"

  # The auth API's paths (functions/auth/src/lib.rs) that the stricter rate rules
  # watch, matched after URL-decoding, path normalisation and lower-casing so
  # /v1/auth//LOGIN or /v1/auth/log%69n count too.
  sign_in_path_regex = "^/v1/auth/(login(/mfa)?|token|refresh)/?$"
  mail_path_regex    = "^/v1/auth/(register|confirm/resend|password/forgot)/?$"

  path_transformations = ["URL_DECODE", "NORMALIZE_PATH", "LOWERCASE"]

  # Per-path rate rules: name => priority, limit and the path regex they count.
  path_rate_rules = {
    "rate-sign-in" = { priority = 1, limit = var.sign_in_rate_limit, path_regex = local.sign_in_path_regex }
    "rate-mail"    = { priority = 2, limit = var.mail_rate_limit, path_regex = local.mail_path_regex }
  }

  custom_certificate = var.acm_certificate_arn != null
}

# ---------------------------------------------------------------------------
# Log encryption key (us-east-1)
# ---------------------------------------------------------------------------

resource "aws_kms_key" "this" {
  provider = aws.us_east_1

  description             = "${local.name}: encrypts the edge web ACL log and the CloudFront access logs"
  key_usage               = "ENCRYPT_DECRYPT"
  deletion_window_in_days = var.kms_deletion_window_in_days
  enable_key_rotation     = true

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Lets IAM policies of this account grant use of the key.
        Sid       = "AccountRootAdministersKey"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # CloudWatch Logs, for the web ACL's log group only.
        Sid       = "CloudWatchLogsForTheWafLogGroup"
        Effect    = "Allow"
        Principal = { Service = "logs.us-east-1.${data.aws_partition.current.dns_suffix}" }
        Action    = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
        Resource  = "*"
        Condition = { ArnEquals = { "kms:EncryptionContext:aws:logs:arn" = local.waf_log_group_arn } }
      },
      {
        # CloudWatch Logs' delivery of CloudFront's access logs (standard
        # logging v2) writes into the SSE-KMS bucket under this principal, for
        # this account's delivery sources only.
        Sid       = "CloudFrontLogDelivery"
        Effect    = "Allow"
        Principal = { Service = "delivery.logs.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = local.delivery_sources_arn }
        }
      },
    ]
  })

  tags = merge(var.tags, { Name = "${local.name}-logs" })
}

resource "aws_kms_alias" "this" {
  provider = aws.us_east_1

  name          = "alias/${local.name}-logs"
  target_key_id = aws_kms_key.this.key_id
}

# ---------------------------------------------------------------------------
# Web ACL (CLOUDFRONT scope, us-east-1)
# ---------------------------------------------------------------------------

# Sources the global rate rule does not count (may be empty).
resource "aws_wafv2_ip_set" "rate_exempt" {
  provider = aws.us_east_1

  name               = "${local.name}-rate-exempt"
  description        = "Platform egress addresses exempt from the global rate limit"
  scope              = "CLOUDFRONT"
  ip_address_version = "IPV4"
  addresses          = var.rate_limit_exempt_cidrs

  tags = var.tags
}

resource "aws_wafv2_web_acl" "this" {
  provider = aws.us_east_1

  name        = local.name
  description = "Edge of ${var.resource_prefix}: AWS managed rules and per-IP rate limits"
  scope       = "CLOUDFRONT"

  default_action {
    allow {}
  }

  # Known bad sources first, so they are refused before they count against a rate.
  rule {
    name     = "AWSManagedRulesAmazonIpReputationList"
    priority = 0

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesAmazonIpReputationList"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-AWSManagedRulesAmazonIpReputationList"
      sampled_requests_enabled   = true
    }
  }

  # Priorities 1-3: the rate rules below.

  # Log4Shell and other exploit payloads.
  rule {
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 4

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-AWSManagedRulesKnownBadInputsRuleSet"
      sampled_requests_enabled   = true
    }
  }

  # OWASP-style protections (XSS, LFI, SSRF to metadata, oversized bodies).
  rule {
    name     = "AWSManagedRulesCommonRuleSet"
    priority = 5

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-AWSManagedRulesCommonRuleSet"
      sampled_requests_enabled   = true
    }
  }

  # Stricter per-IP limits on the credential and e-mail paths. Refused with 429,
  # so clients back off instead of treating it as a refusal.
  dynamic "rule" {
    for_each = local.path_rate_rules

    content {
      name     = rule.key
      priority = rule.value.priority

      action {
        block {
          custom_response {
            response_code = 429
          }
        }
      }

      statement {
        rate_based_statement {
          limit                 = rule.value.limit
          aggregate_key_type    = "IP"
          evaluation_window_sec = 300

          scope_down_statement {
            regex_match_statement {
              regex_string = rule.value.path_regex

              field_to_match {
                uri_path {}
              }

              dynamic "text_transformation" {
                for_each = local.path_transformations

                content {
                  priority = text_transformation.key
                  type     = text_transformation.value
                }
              }
            }
          }
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.name}-${rule.key}"
        sampled_requests_enabled   = true
      }
    }
  }

  # Every path, every IP except the platform's own egress addresses: auth-proxy
  # polls the revocation feed every second per pod through this edge, which
  # would otherwise trip the limit and make the proxies fail closed.
  rule {
    name     = "rate-global"
    priority = 3

    action {
      block {
        custom_response {
          response_code = 429
        }
      }
    }

    statement {
      rate_based_statement {
        limit                 = var.rate_limit
        aggregate_key_type    = "IP"
        evaluation_window_sec = 300

        scope_down_statement {
          not_statement {
            statement {
              ip_set_reference_statement {
                arn = aws_wafv2_ip_set.rate_exempt.arn
              }
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-rate-global"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.name
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "waf" {
  provider = aws.us_east_1

  name              = local.waf_log_group
  retention_in_days = var.log_retention_in_days
  kms_key_id        = aws_kms_key.this.arn

  tags = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  provider = aws.us_east_1

  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  # Bearer tokens and cookies stay out of the logs.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  redacted_fields {
    single_header {
      name = "cookie"
    }
  }
}

# ---------------------------------------------------------------------------
# Access-log bucket (us-east-1)
# ---------------------------------------------------------------------------

module "logs_bucket" {
  source = "../bucket"
  providers = {
    aws = aws.us_east_1
  }

  # Bucket names are global: the account ID keeps this one unique (at most 63
  # characters with a 40-character prefix).
  name                               = "${local.name}-logs-${local.account_id}"
  kms_key_arn                        = aws_kms_key.this.arn
  expiration_days                    = var.log_retention_in_days
  noncurrent_version_expiration_days = 30
  abort_incomplete_upload_days       = 7
  force_destroy                      = var.access_log_bucket_force_destroy
  # CloudFront's access logs arrive through CloudWatch Logs' delivery (standard
  # logging v2), from this account's delivery sources only.
  log_writers = [{
    service            = "delivery.logs.amazonaws.com"
    prefix             = local.access_log_prefix
    source_arn         = local.delivery_sources_arn
    owner_full_control = true
  }]

  tags = var.tags
}

moved {
  from = aws_s3_bucket.logs
  to   = module.logs_bucket.aws_s3_bucket.this
}

moved {
  from = aws_s3_bucket_ownership_controls.logs
  to   = module.logs_bucket.aws_s3_bucket_ownership_controls.this
}

moved {
  from = aws_s3_bucket_public_access_block.logs
  to   = module.logs_bucket.aws_s3_bucket_public_access_block.this
}

moved {
  from = aws_s3_bucket_versioning.logs
  to   = module.logs_bucket.aws_s3_bucket_versioning.this
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.logs
  to   = module.logs_bucket.aws_s3_bucket_server_side_encryption_configuration.this
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.logs
  to   = module.logs_bucket.aws_s3_bucket_lifecycle_configuration.this
}

moved {
  from = aws_s3_bucket_policy.logs
  to   = module.logs_bucket.aws_s3_bucket_policy.this
}

# ---------------------------------------------------------------------------
# Distribution
# ---------------------------------------------------------------------------

# API answers are per caller: never cached.
data "aws_cloudfront_cache_policy" "caching_disabled" {
  name = "Managed-CachingDisabled"
}

# Every viewer header, cookie and query string reaches the API, except Host:
# API Gateway routes by its own host name. CloudFront's own headers are added,
# CloudFront-Viewer-Address among them: the auth function and the auth-proxy
# read the client's address there (the function's http.client_address_header,
# the proxy's [forwarded] client_address_header in its routes file), since the
# connection API Gateway sees is an edge's. A custom policy cannot do both: its
# allExcept adds no CloudFront header, allViewerAndWhitelistCloudFront sends Host.
data "aws_cloudfront_origin_request_policy" "all_viewer_except_host" {
  name = "Managed-AllViewerExceptHostHeader"
}

# The same security headers the services set (crates/kernel/src/http.rs), here
# also on answers API Gateway or WAF produce themselves (403, 429, 5xx).
resource "aws_cloudfront_response_headers_policy" "this" {
  #checkov:skip=CKV_AWS_259:HSTS is two years with includeSubDomains, as the services send it; only "preload" is left out, which commits the whole registrable domain in browsers' built-in lists and is its owner's decision.
  name    = "${local.name}-security-headers"
  comment = "Security headers on every answer of ${var.resource_prefix}"

  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 63072000
      include_subdomains         = true
      preload                    = false
      override                   = true
    }

    content_type_options {
      override = true
    }

    frame_options {
      frame_option = "DENY"
      override     = true
    }

    referrer_policy {
      referrer_policy = "no-referrer"
      override        = true
    }

    content_security_policy {
      content_security_policy = "default-src 'none'; frame-ancestors 'none'"
      override                = true
    }

    # "0": the legacy XSS auditor is off, as current guidance advises; the CSP
    # above is what protects.
    xss_protection {
      protection = false
      override   = true
    }
  }
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_174:TLSv1.2_2021 is enforced whenever acm_certificate_arn is set; on the default *.cloudfront.net certificate CloudFront accepts only TLSv1 as the minimum. Stages clients use set a certificate (docs/deploy.md).
  #checkov:skip=CKV_AWS_305:The origin is an API, not a bucket of pages: there is no root object to serve.
  #checkov:skip=CKV_AWS_310:One origin exists (the regional API); failing over needs a second region's deployment, which this platform does not run.
  #checkov:skip=CKV2_AWS_46:The origin is API Gateway, not S3; the bucket this check sees is the access-log target.
  #checkov:skip=CKV_AWS_86:Access logs are on, through standard logging v2 (aws_cloudwatch_log_delivery.access_logs below), which this check does not look for; it knows only the legacy logging_config.
  #checkov:skip=CKV2_AWS_47:The web ACL has KnownBadInputs (Log4j). AnonymousIpList, which this check also demands, would refuse VPN users and every server-side OAuth client hosted in a cloud.
  #checkov:skip=CKV_AWS_374:A public authentication API serves every country by default; geo_restriction_type restricts it where a stage must.
  enabled         = true
  comment         = "${var.resource_prefix} API"
  is_ipv6_enabled = true
  http_version    = "http2and3"
  price_class     = var.price_class
  aliases         = var.domain_names
  web_acl_id      = aws_wafv2_web_acl.this.arn

  origin {
    origin_id   = local.origin_id
    domain_name = var.origin_domain_name
    origin_path = var.origin_path

    custom_origin_config {
      http_port                = 80
      https_port               = 443
      origin_protocol_policy   = "https-only"
      origin_ssl_protocols     = ["TLSv1.2"]
      origin_read_timeout      = 30
      origin_keepalive_timeout = 5
    }

    # The API's web ACL refuses every request without this header (403).
    # CloudFront overwrites a viewer-sent header of the same name.
    custom_header {
      name  = var.origin_verify_header_name
      value = var.origin_verify_header_value
    }
  }

  default_cache_behavior {
    target_origin_id           = local.origin_id
    viewer_protocol_policy     = "https-only"
    allowed_methods            = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = data.aws_cloudfront_cache_policy.caching_disabled.id
    origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_viewer_except_host.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.this.id
    compress                   = true
  }

  restrictions {
    geo_restriction {
      restriction_type = var.geo_restriction_type
      locations        = var.geo_restriction_locations
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = !local.custom_certificate
    acm_certificate_arn            = var.acm_certificate_arn
    ssl_support_method             = local.custom_certificate ? "sni-only" : null
    minimum_protocol_version       = local.custom_certificate ? "TLSv1.2_2021" : "TLSv1"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = (length(var.domain_names) > 0) == local.custom_certificate
      error_message = "Set domain_names and acm_certificate_arn together: a custom name needs a certificate, and a certificate is only used for custom names."
    }

    precondition {
      condition     = (var.geo_restriction_type == "none") == (length(var.geo_restriction_locations) == 0)
      error_message = "geo_restriction_locations must be empty exactly when geo_restriction_type is \"none\"."
    }
  }

  depends_on = [aws_wafv2_web_acl_logging_configuration.this]
}

# Access logs (standard logging v2: CloudWatch Logs delivers them; made in
# us-east-1, as CloudFront's must be), as JSON under access_log_prefix. Cookies
# are not among the fields.
resource "aws_cloudwatch_log_delivery_source" "access_logs" {
  provider = aws.us_east_1

  name         = "${local.name}-access-logs"
  log_type     = "ACCESS_LOGS"
  resource_arn = aws_cloudfront_distribution.this.arn

  tags = var.tags
}

resource "aws_cloudwatch_log_delivery_destination" "access_logs" {
  provider = aws.us_east_1

  name          = "${local.name}-access-logs"
  output_format = "json"

  delivery_destination_configuration {
    destination_resource_arn = "${module.logs_bucket.arn}/${local.access_log_prefix}"
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_delivery" "access_logs" {
  provider = aws.us_east_1

  delivery_source_name     = aws_cloudwatch_log_delivery_source.access_logs.name
  delivery_destination_arn = aws_cloudwatch_log_delivery_destination.access_logs.arn

  tags = var.tags

  # CreateDelivery checks that it may write to the bucket.
  depends_on = [module.logs_bucket]
}

# Shield Advanced: DDoS response team access, cost protection and L7 metrics for
# the distribution. The subscription itself is an account-level, one-year
# commitment made outside Terraform.
resource "aws_shield_protection" "this" {
  count = var.enable_shield_advanced ? 1 : 0

  name         = "${local.name}-cloudfront"
  resource_arn = aws_cloudfront_distribution.this.arn

  tags = var.tags
}
