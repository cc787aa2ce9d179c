# What tells a person that the platform is failing or under attack: X-Ray
# sampling rules, CloudWatch alarms on every component to an encrypted SNS topic,
# and one dashboard.
#
# Sources of the metrics, and what each alarm assumes:
# - AWS services publish AWS/ApiGateway (a REST API: ApiName and Stage),
#   AWS/Lambda, AWS/SQS, AWS/DynamoDB, AWS/Usage (KMS request quotas), and, in
#   us-east-1 only, AWS/WAFV2 for a CLOUDFRONT-scope web ACL and
#   AWS/CertificateManager for CloudFront's certificates.
# - The auth function prints one CloudWatch Embedded Metric Format line per
#   audited security event (functions/auth/src/metrics.rs through
#   kernel::metrics::emf_count), e.g.
#     {"Service":"auth","Kind":"login","Outcome":"failure","SecurityEvents":1,"_aws":{...}}
#   CloudWatch turns that line into Rampart/SecurityEvents{Service,Kind,Outcome},
#   but those dimensions do not name the environment, so two environments in one
#   account and Region would share the series. The metric filters below read the
#   same lines from this environment's own log group into Rampart/<resource_prefix>.
#   They assume the function's log format is Text (Lambda's default), where each
#   printed line is one log event.
# - core and auth-proxy serve Prometheus metrics on /metrics. ASSUMPTION: the
#   CloudWatch agent (Container Insights with Prometheus monitoring) scrapes them
#   and publishes, into var.eks_metric_namespace:
#     rampart_mtls_certificate_expires_in_seconds   dimensions [ClusterName, service]
#     rampart_secrets_credential_expires_in_seconds dimensions [ClusterName]
#     rampart_secrets_stale_served_for_seconds      dimensions [ClusterName]
#   (the agent's metric_declaration must declare exactly these dimension sets;
#   "service" is the metric's own label, "core" or "auth-proxy"). Series
#   aggregated over pods are alarmed on their Minimum, so the worst pod counts.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region

  # A CLOUDFRONT-scope web ACL and the certificates CloudFront serves publish
  # their metrics in us-east-1 only; an alarm must be in its metric's Region and
  # notify a topic in its own Region, hence a second topic there.
  topic_regions = { main = local.region, edge = "us-east-1" }
  topic_names   = { main = "${var.resource_prefix}-alarms", edge = "${var.resource_prefix}-alarms-edge" }

  alarm_actions      = [aws_sns_topic.this["main"].arn]
  edge_alarm_actions = [aws_sns_topic.this["edge"].arn]

  api_dimensions = { ApiName = var.api_gateway_name, Stage = var.api_gateway_stage_name }

  # This environment's auth security metrics (see the header comment).
  security_namespace = "Rampart/${var.resource_prefix}"

  # Security events the auth function prints as EMF lines; the filter patterns
  # match those lines' top-level fields (Kind and Outcome are the audit log's
  # snake_case names: functions/auth/src/audit.rs).
  auth_events = {
    "failed-sign-ins" = {
      metric      = "FailedSignIns"
      pattern     = "{ $.Service = \"auth\" && $.Kind = \"login\" && $.Outcome = \"failure\" }"
      threshold   = var.thresholds.failed_sign_ins
      description = "Refused passwords or TOTP codes at /v1/auth/login and /v1/auth/login/mfa: credential stuffing or a broken identity provider (reasons are in the audit table)."
    }
    "throttled-sign-ins" = {
      metric      = "ThrottledSignIns"
      pattern     = "{ $.Service = \"auth\" && $.Kind = \"login\" && $.Outcome = \"throttled\" }"
      threshold   = var.thresholds.throttled_sign_ins
      description = "Sign-in attempts refused by the per-account, per-address or per-device throttle: someone is guessing passwords."
    }
    "refresh-token-reuse" = {
      metric      = "RefreshTokenReuse"
      pattern     = "{ $.Service = \"auth\" && $.Kind = \"refresh_token_reuse\" }"
      threshold   = var.thresholds.refresh_token_reuse
      description = "A rotated refresh token was presented again and its session revoked: a token was stolen or replayed. Look up the session in the audit table."
    }
    "audit-write-failures" = {
      metric      = "AuditWriteFailures"
      pattern     = "{ $.Service = \"auth\" && $.AuditWriteFailures = 1 }"
      threshold   = var.thresholds.audit_write_failures
      description = "Security events the audit table refused: the audit log has a gap."
    }
  }

  dynamodb_throttle_metrics = ["ThrottledRequests", "ReadThrottleEvents", "WriteThrottleEvents"]
  dynamodb_alarms = {
    for pair in setproduct(keys(var.dynamodb_table_names), local.dynamodb_throttle_metrics) :
    "${pair[0]}-${pair[1]}" => { name = pair[0], table = var.dynamodb_table_names[pair[0]], metric = pair[1] }
  }
}

# --- Notification -------------------------------------------------------------

# A customer managed key per topic: the AWS managed SNS key cannot be used by
# CloudWatch alarms, whose service principal must be allowed to use the key.
resource "aws_kms_key" "alarms" {
  for_each = local.topic_regions

  region                  = each.value
  description             = "${local.topic_names[each.key]}: encrypts the alarm notifications of ${var.resource_prefix}"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # As in modules/keys: the account administers the key through IAM.
        Sid       = "AccountRootAdministersKey"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # Only this environment's alarms may encrypt messages to the topic.
        Sid       = "AlarmsOfThisEnvironmentPublish"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:cloudwatch:${each.value}:${local.account_id}:alarm:${var.resource_prefix}-*" }
        }
      },
    ]
  })

  tags = merge(var.tags, { Name = local.topic_names[each.key] })
}

resource "aws_kms_alias" "alarms" {
  for_each = local.topic_regions

  region        = each.value
  name          = "alias/${local.topic_names[each.key]}"
  target_key_id = aws_kms_key.alarms[each.key].key_id
}

resource "aws_sns_topic" "this" {
  for_each = local.topic_regions

  region            = each.value
  name              = local.topic_names[each.key]
  kms_master_key_id = aws_kms_key.alarms[each.key].arn

  tags = merge(var.tags, { Name = local.topic_names[each.key] })
}

resource "aws_sns_topic_policy" "this" {
  for_each = local.topic_regions

  region = each.value
  arn    = aws_sns_topic.this[each.key].arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Principals of this account keep what IAM grants them; of the services,
        # only this environment's alarms publish.
        Sid       = "AlarmsOfThisEnvironmentPublish"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.this[each.key].arn
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:cloudwatch:${each.value}:${local.account_id}:alarm:${var.resource_prefix}-*" }
        }
      },
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "sns:Publish"
        Resource  = aws_sns_topic.this[each.key].arn
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
}

resource "aws_sns_topic_subscription" "email" {
  for_each = var.alarm_email == null ? {} : local.topic_regions

  region    = each.value
  topic_arn = aws_sns_topic.this[each.key].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# --- Tracing ------------------------------------------------------------------

# Sampled at the API Gateway stage; the trace header carries the decision to the
# Lambdas and to auth-proxy and core, which follow it (kernel::telemetry), so
# these two rules set the sampling of whole requests. X-Ray decides when a request
# starts (head-based): no rule can select the requests that will fail, so there
# is no "all errors" rule. Errors are counted in full by the alarms below, and a
# failure has a trace only if its request was sampled.
resource "aws_xray_sampling_rule" "auth" {
  rule_name      = "${var.resource_prefix}-auth"
  priority       = 100
  version        = 1
  reservoir_size = var.xray_sampling.auth_reservoir_size
  fixed_rate     = var.xray_sampling.auth_fixed_rate
  service_type   = "AWS::ApiGateway::Stage"
  service_name   = "${var.api_gateway_name}/${var.api_gateway_stage_name}"
  host           = "*"
  http_method    = "*"
  # The leading * also matches a path that begins with the stage name.
  url_path     = "*/v1/auth/*"
  resource_arn = "*"

  tags = var.tags

  lifecycle {
    precondition {
      condition     = length("${var.resource_prefix}-other") <= 32
      error_message = "X-Ray rule names are at most 32 characters: resource_prefix must be at most 26 characters here."
    }
  }
}

resource "aws_xray_sampling_rule" "other" {
  rule_name      = "${var.resource_prefix}-other"
  priority       = 200
  version        = 1
  reservoir_size = var.xray_sampling.other_reservoir_size
  fixed_rate     = var.xray_sampling.other_fixed_rate
  service_type   = "AWS::ApiGateway::Stage"
  service_name   = "${var.api_gateway_name}/${var.api_gateway_stage_name}"
  host           = "*"
  http_method    = "*"
  url_path       = "*"
  resource_arn   = "*"

  tags = var.tags
}

# --- API Gateway --------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${var.resource_prefix}-api-5xx-rate"
  alarm_description   = "More than ${var.thresholds.api_5xx_rate_percent} % of the API's requests answered 5xx in 5 minutes (judged from ${var.thresholds.api_min_requests} requests)."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.api_5xx_rate_percent
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    label       = "5xx in % of requests"
    expression  = "IF(requests >= ${var.thresholds.api_min_requests}, 100 * errors / requests, 0)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5XXError"
      dimensions  = local.api_dimensions
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = local.api_dimensions
      period      = 300
      stat        = "Sum"
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_latency_p99" {
  alarm_name          = "${var.resource_prefix}-api-latency-p99"
  alarm_description   = "The API's p99 latency (API Gateway to answer) above ${var.thresholds.api_latency_p99_ms} ms in 2 of 3 five-minute periods."
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = local.api_dimensions
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.api_latency_p99_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# --- Lambda -------------------------------------------------------------------

# Per function: failed invocations (crashes and timeouts, not 4xx answers), and
# throttles (reserved concurrency or the account limit reached: callers got 429
# or 5xx).
locals {
  lambda_alarms = merge([
    for function, name in var.lambda_function_names : {
      "${function}-errors" = {
        function    = function
        name        = name
        metric      = "Errors"
        threshold   = var.thresholds.lambda_errors
        description = "The ${function} function failed ${var.thresholds.lambda_errors} or more invocations in 5 minutes (crashes and timeouts, not 4xx answers)."
      }
      "${function}-throttles" = {
        function    = function
        name        = name
        metric      = "Throttles"
        threshold   = var.thresholds.lambda_throttles
        description = "The ${function} function was throttled ${var.thresholds.lambda_throttles} or more times in 5 minutes (reserved concurrency or the account limit reached): callers got 429 or 5xx."
      }
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "lambda" {
  for_each = local.lambda_alarms

  alarm_name          = "${var.resource_prefix}-lambda-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = { FunctionName = each.value.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# The alarms of the functions this platform deploys, from their former resources.

moved {
  from = aws_cloudwatch_metric_alarm.lambda_errors["auth"]
  to   = aws_cloudwatch_metric_alarm.lambda["auth-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_throttles["auth"]
  to   = aws_cloudwatch_metric_alarm.lambda["auth-throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_errors["authorizer"]
  to   = aws_cloudwatch_metric_alarm.lambda["authorizer-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_throttles["authorizer"]
  to   = aws_cloudwatch_metric_alarm.lambda["authorizer-throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_errors["rotate-secret"]
  to   = aws_cloudwatch_metric_alarm.lambda["rotate-secret-errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.lambda_throttles["rotate-secret"]
  to   = aws_cloudwatch_metric_alarm.lambda["rotate-secret-throttles"]
}

resource "aws_cloudwatch_metric_alarm" "dead_letter_queue" {
  for_each = var.dead_letter_queue_names

  alarm_name          = "${var.resource_prefix}-dlq-${each.key}-depth"
  alarm_description   = "Events the ${each.key} function gave up on are waiting in its dead-letter queue ${each.value}: inspect and redrive them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.thresholds.dead_letter_messages
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# --- Edge (us-east-1) ---------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "waf_blocked_requests" {
  region              = local.topic_regions.edge
  alarm_name          = "${var.resource_prefix}-waf-blocked-requests"
  alarm_description   = "The web ACL ${var.wafv2_web_acl_name} blocked ${var.thresholds.waf_blocked_requests} or more requests in 5 minutes: an attack, or a rule blocking real users (see the WAF sampled requests)."
  namespace           = "AWS/WAFV2"
  metric_name         = "BlockedRequests"
  dimensions          = { WebACL = var.wafv2_web_acl_name, Rule = "ALL" }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.thresholds.waf_blocked_requests
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.edge_alarm_actions
  ok_actions          = local.edge_alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "cloudfront_certificate" {
  for_each = toset(var.cloudfront_certificate_arns)

  region              = local.topic_regions.edge
  alarm_name          = "${var.resource_prefix}-acm-${element(split("/", each.value), 1)}-expiry"
  alarm_description   = "CloudFront's certificate ${each.value} expires in under ${var.thresholds.acm_certificate_days} days: ACM could not renew it (check its DNS validation records)."
  namespace           = "AWS/CertificateManager"
  metric_name         = "DaysToExpiry"
  dimensions          = { CertificateArn = each.value }
  statistic           = "Minimum"
  period              = 86400
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = var.thresholds.acm_certificate_days
  treat_missing_data  = "missing"
  alarm_actions       = local.edge_alarm_actions
  ok_actions          = local.edge_alarm_actions

  tags = var.tags
}

# --- DynamoDB -----------------------------------------------------------------

# Metrics Insights queries, so that one alarm per table and metric sums every
# dimension set: ThrottledRequests is published per operation, and the throttle
# events per table and per global secondary index.
resource "aws_cloudwatch_metric_alarm" "dynamodb_throttles" {
  for_each = local.dynamodb_alarms

  alarm_name          = "${var.resource_prefix}-dynamodb-${each.value.name}-${each.value.metric}"
  alarm_description   = "${each.value.metric} on table ${each.value.table} (and its indexes) reached ${var.thresholds.dynamodb_throttles} in 5 minutes: on-demand capacity is doubling too slowly or a partition is hot."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.thresholds.dynamodb_throttles
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "throttles"
    label       = "${each.value.metric} ${each.value.table}"
    expression  = "SELECT SUM(${each.value.metric}) FROM \"AWS/DynamoDB\" WHERE TableName = '${each.value.table}'"
    period      = 300
    return_data = true
  }

  tags = var.tags
}

# --- KMS ----------------------------------------------------------------------

# KMS publishes no throttle count for keys in the default key store (its
# ExternalKeyStoreThrottle metric covers external key stores only). What it does
# publish is each request quota's use, AWS/Usage CallCount, summed per minute;
# the quota is per second, so the alarm compares the minute's average rate with
# SERVICE_QUOTA. Bursts inside a minute are higher than the average, hence a
# default threshold of 50 %.
resource "aws_cloudwatch_metric_alarm" "kms_quota" {
  for_each = toset(var.kms_quota_resources)

  alarm_name          = "${var.resource_prefix}-kms-${each.value}-quota"
  alarm_description   = "KMS ${each.value} requests averaged over ${var.thresholds.kms_quota_percent} % of the account's per-second quota in 3 of 5 minutes: throttling (ThrottlingException) is near. The quota is shared by every environment in this account and Region."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.thresholds.kms_quota_percent
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "utilization"
    label       = "% of the ${each.value} quota"
    expression  = "100 * (calls / PERIOD(calls)) / SERVICE_QUOTA(calls)"
    return_data = true
  }

  metric_query {
    id = "calls"
    metric {
      namespace   = "AWS/Usage"
      metric_name = "CallCount"
      dimensions  = { Service = "KMS", Type = "API", Resource = each.value, Class = "None" }
      period      = 60
      stat        = "Sum"
    }
  }

  tags = var.tags
}

# --- EKS services (Prometheus through the CloudWatch agent) -------------------

resource "aws_cloudwatch_metric_alarm" "mtls_certificate" {
  for_each = toset(var.mtls_services)

  alarm_name          = "${var.resource_prefix}-mtls-${each.value}-certificate"
  alarm_description   = "A ${each.value} pod's mTLS certificate from Vault PKI has under ${var.thresholds.mtls_certificate_seconds} s left: renewals are failing (Vault unreachable or the PKI role refused). No data means the pods or the metrics pipeline stopped reporting."
  namespace           = var.eks_metric_namespace
  metric_name         = "rampart_mtls_certificate_expires_in_seconds"
  dimensions          = { ClusterName = var.eks_cluster_name, service = each.value }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = var.thresholds.mtls_certificate_seconds
  # Every pod of both services must report this gauge: silence is a failure too.
  treat_missing_data        = "missing"
  alarm_actions             = local.alarm_actions
  ok_actions                = local.alarm_actions
  insufficient_data_actions = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "vault_token" {
  alarm_name          = "${var.resource_prefix}-vault-token-expiry"
  alarm_description   = "core's Vault token (the lease its dynamic secrets hang on) has under ${var.thresholds.vault_token_seconds} s left: renewal and re-login are failing."
  namespace           = var.eks_metric_namespace
  metric_name         = "rampart_secrets_credential_expires_in_seconds"
  dimensions          = { ClusterName = var.eks_cluster_name }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = var.thresholds.vault_token_seconds
  # Only a Vault-backed secret source reports the gauge; with Secrets Manager there is none.
  treat_missing_data = "notBreaching"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "secrets_served_stale" {
  alarm_name          = "${var.resource_prefix}-secrets-served-stale"
  alarm_description   = "core is serving cached secrets because Vault cannot be reached; they stop being served when the time in rampart_secrets_stale_served_for_seconds runs out."
  namespace           = var.eks_metric_namespace
  metric_name         = "rampart_secrets_stale_served_for_seconds"
  dimensions          = { ClusterName = var.eks_cluster_name }
  statistic           = "SampleCount"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# --- Auth API security events -------------------------------------------------

resource "aws_cloudwatch_log_metric_filter" "auth" {
  for_each = local.auth_events

  name           = "${var.resource_prefix}-${each.key}"
  log_group_name = var.auth_log_group_name
  pattern        = each.value.pattern

  metric_transformation {
    name      = each.value.metric
    namespace = local.security_namespace
    value     = "1"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "auth" {
  for_each = local.auth_events

  alarm_name          = "${var.resource_prefix}-auth-${each.key}"
  alarm_description   = "${each.value.description} Threshold: ${each.value.threshold} in 5 minutes."
  namespace           = local.security_namespace
  metric_name         = aws_cloudwatch_log_metric_filter.auth[each.key].metric_transformation[0].name
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

# --- Dashboard ----------------------------------------------------------------

locals {
  main_alarm_arns = concat(
    [aws_cloudwatch_metric_alarm.api_5xx_rate.arn, aws_cloudwatch_metric_alarm.api_latency_p99.arn],
    [for alarm in aws_cloudwatch_metric_alarm.auth : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.lambda : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.dead_letter_queue : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.dynamodb_throttles : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.kms_quota : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.mtls_certificate : alarm.arn],
    [aws_cloudwatch_metric_alarm.vault_token.arn, aws_cloudwatch_metric_alarm.secrets_served_stale.arn],
  )

  api_metric = ["ApiName", var.api_gateway_name, "Stage", var.api_gateway_stage_name]

  dashboard_widgets = concat(
    [
      {
        type = "alarm", width = 24, height = 4
        properties = { title = "Alarms (${local.region}; WAF and certificate alarms are in us-east-1)", alarms = local.main_alarm_arns }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "API requests and errors", region = local.region, view = "timeSeries", stat = "Sum", period = 300
          metrics = [
            concat(["AWS/ApiGateway", "Count"], local.api_metric, [{ id = "requests" }]),
            concat(["AWS/ApiGateway", "4XXError"], local.api_metric),
            concat(["AWS/ApiGateway", "5XXError"], local.api_metric, [{ id = "errors" }]),
            [{ expression = "100 * errors / requests", label = "5xx %", id = "rate", yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "API latency (ms)", region = local.region, view = "timeSeries", period = 300
          metrics = [
            concat(["AWS/ApiGateway", "Latency"], local.api_metric, [{ stat = "p50", label = "p50" }]),
            concat(["AWS/ApiGateway", "Latency"], local.api_metric, [{ stat = "p99", label = "p99" }]),
            concat(["AWS/ApiGateway", "IntegrationLatency"], local.api_metric, [{ stat = "p99", label = "integration p99" }]),
          ]
          annotations = { horizontal = [{ label = "p99 alarm", value = var.thresholds.api_latency_p99_ms }] }
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "Auth API security events", region = local.region, view = "timeSeries", stat = "Sum", period = 300
          metrics = [for event in values(local.auth_events) : [local.security_namespace, event.metric, { label = event.metric }]]
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "WAF requests (${var.wafv2_web_acl_name})", region = local.topic_regions.edge, view = "timeSeries", stat = "Sum", period = 300
          metrics = [
            ["AWS/WAFV2", "AllowedRequests", "WebACL", var.wafv2_web_acl_name, "Rule", "ALL"],
            ["AWS/WAFV2", "BlockedRequests", "WebACL", var.wafv2_web_acl_name, "Rule", "ALL"],
          ]
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "Lambda errors and throttles", region = local.region, view = "timeSeries", stat = "Sum", period = 300
          metrics = concat(
            [for crate, name in var.lambda_function_names : ["AWS/Lambda", "Errors", "FunctionName", name, { label = "${crate} errors" }]],
            [for crate, name in var.lambda_function_names : ["AWS/Lambda", "Throttles", "FunctionName", name, { label = "${crate} throttles" }]],
          )
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "Lambda duration p99 (ms)", region = local.region, view = "timeSeries", stat = "p99", period = 300
          metrics = [for crate, name in var.lambda_function_names : ["AWS/Lambda", "Duration", "FunctionName", name, { label = crate }]]
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "DynamoDB throttles", region = local.region, view = "timeSeries", stat = "Sum", period = 300
          metrics = [
            for name, table in var.dynamodb_table_names :
            [{ expression = "SELECT SUM(ThrottledRequests) FROM \"AWS/DynamoDB\" WHERE TableName = '${table}'", label = "${name} throttled requests", id = "ddb_${replace(name, "-", "_")}" }]
          ]
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "KMS request quotas (% used)", region = local.region, view = "timeSeries", period = 60
          metrics = concat(
            [for index, resource in var.kms_quota_resources : ["AWS/Usage", "CallCount", "Service", "KMS", "Type", "API", "Resource", resource, "Class", "None", { id = "kms${index}", stat = "Sum", visible = false }]],
            [for index, resource in var.kms_quota_resources : [{ expression = "100 * (kms${index} / PERIOD(kms${index})) / SERVICE_QUOTA(kms${index})", label = resource, id = "kmspct${index}" }]],
          )
        }
      },
      {
        type = "metric", width = 12, height = 6
        properties = {
          title = "Time left on mTLS certificates and the Vault token (s)", region = local.region, view = "timeSeries", stat = "Minimum", period = 300
          metrics = concat(
            [for service in var.mtls_services : [var.eks_metric_namespace, "rampart_mtls_certificate_expires_in_seconds", "ClusterName", var.eks_cluster_name, "service", service, { label = "${service} certificate" }]],
            [[var.eks_metric_namespace, "rampart_secrets_credential_expires_in_seconds", "ClusterName", var.eks_cluster_name, { label = "core Vault token" }]],
          )
        }
      },
    ],
    [
      for queues in [var.dead_letter_queue_names] : {
        type = "metric", width = 12, height = 6
        properties = {
          title = "Dead-letter queue depth", region = local.region, view = "timeSeries", stat = "Maximum", period = 300
          metrics = [for crate, queue in queues : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue, { label = crate }]]
        }
      } if length(queues) > 0
    ],
  )
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.resource_prefix
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
