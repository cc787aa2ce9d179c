# The public API: a REGIONAL REST API behind CloudFront (modules/edge).
#   /v1/auth/*, /.well-known/*  -> the auth Lambda (proxy integration)
#   /v1/version                 -> auth-proxy, public (core's version)
#   every other /v1/*           -> auth-proxy, after the authorizer Lambda
# auth-proxy is reached through a VPC link and an internal NLB whose targets are
# the EKS nodes on the auth-proxy NodePort.
#
# Only CloudFront may call the API: CloudFront adds a secret header, and the web
# ACL on the stage blocks (403) every request without it, so a direct call to
# the execute-api URL skips nothing. The NLB has no address outside the VPC and
# its security group admits nothing but the VPC link. docs/deploy.md explains.

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  name       = "${var.resource_prefix}-api"

  # ELB names are limited to 32 characters and may not end with a hyphen.
  lb_name = trimsuffix(substr("${var.resource_prefix}-proxy", 0, 32), "-")

  # auth-proxy strips every client-sent x-rampart-* header before forwarding, so
  # the secret never reaches core.
  origin_verify_header_name = "x-rampart-origin-verify"

  authorizer_name = "rampart-authorizer"

  # Every route of the auth function's router (functions/auth/src/lib.rs). Only
  # these reach it: any other path is refused by API Gateway without invoking it.
  auth_routes = [
    "GET /v1/auth/version",
    "GET /v1/auth/openapi.json",
    "POST /v1/auth/register",
    "POST /v1/auth/confirm",
    "POST /v1/auth/confirm/resend",
    "POST /v1/auth/password/forgot",
    "POST /v1/auth/password/reset",
    "POST /v1/auth/login",
    "POST /v1/auth/login/mfa",
    "POST /v1/auth/refresh",
    "POST /v1/auth/token",
    "POST /v1/auth/logout",
    "POST /v1/auth/logout/all",
    "GET /v1/auth/me",
    "GET /v1/auth/sessions",
    "DELETE /v1/auth/sessions/{id}",
    "POST /v1/auth/password/change",
    "POST /v1/auth/mfa/totp",
    "DELETE /v1/auth/mfa/totp",
    "POST /v1/auth/mfa/totp/verify",
    "GET /v1/auth/revocations",
    "GET /.well-known/jwks.json",
    "GET /.well-known/openid-configuration",
    "GET /.well-known/oauth-authorization-server",
  ]
  auth_paths = distinct([for route in local.auth_routes : split(" ", route)[1]])

  # auth-proxy routes: core's public version, and everything else under /v1/
  # with a token. /v1/auth/* is not caught by /v1/{proxy+}: API Gateway prefers
  # the longer literal path.
  proxy_methods = ["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"]
  proxy_routes  = concat([for method in local.proxy_methods : "${method} /v1/{proxy+}"], ["OPTIONS /v1/{proxy+}", "GET /v1/version"])

  # CORS preflights carry no token: they go to the function or the proxy (whose
  # edge layer answers them for the configured origins) without the authorizer.
  routes = concat(local.auth_routes, [for path in local.auth_paths : "OPTIONS ${path}"], local.proxy_routes)

  path_parameters = {
    for path in concat(local.auth_paths, ["/v1/{proxy+}"]) : path => [
      for match in regexall("\\{([A-Za-z0-9_]+)\\+?\\}", path) : { name = match[0], "in" = "path", required = true, schema = { type = "string" } }
    ]
  }

  lambda_integration = {
    type                = "aws_proxy"
    httpMethod          = "POST"
    uri                 = var.auth_function_invoke_arn
    passthroughBehavior = "when_no_match"
    timeoutInMillis     = var.integration_timeout_milliseconds
  }

  # Plain HTTP inside the VPC: auth-proxy listens without TLS (its peer is the
  # NLB, reached only through the VPC link); it speaks mutual TLS to core.
  proxy_base = "http://${aws_lb.this.dns_name}"

  proxy_integration = {
    for method in concat(local.proxy_methods, ["OPTIONS"]) : method => {
      type                = "http_proxy"
      httpMethod          = method
      uri                 = "${local.proxy_base}/v1/{proxy}"
      connectionType      = "VPC_LINK"
      connectionId        = aws_api_gateway_vpc_link.this.id
      requestParameters   = { "integration.request.path.proxy" = "method.request.path.proxy" }
      passthroughBehavior = "when_no_match"
      timeoutInMillis     = var.integration_timeout_milliseconds
    }
  }

  openapi = {
    openapi = "3.0.1"
    info    = { title = local.name, version = "1" }
    paths = merge(
      {
        for path in local.auth_paths : path => merge(
          {
            for route in local.auth_routes : lower(split(" ", route)[0]) => {
              parameters                       = local.path_parameters[path]
              responses                        = {}
              "x-amazon-apigateway-integration" = local.lambda_integration
            } if split(" ", route)[1] == path
          },
          {
            options = {
              parameters                       = local.path_parameters[path]
              responses                        = {}
              "x-amazon-apigateway-integration" = local.lambda_integration
            }
          },
        )
      },
      {
        "/v1/version" = {
          get = {
            responses = {}
            "x-amazon-apigateway-integration" = merge(local.proxy_integration["GET"], {
              uri               = "${local.proxy_base}/v1/version"
              requestParameters = {}
            })
          }
        }
        "/v1/{proxy+}" = merge(
          {
            for method in local.proxy_methods : lower(method) => {
              parameters                       = local.path_parameters["/v1/{proxy+}"]
              security                         = [{ (local.authorizer_name) = [] }]
              responses                        = {}
              "x-amazon-apigateway-integration" = local.proxy_integration[method]
            }
          },
          {
            options = {
              parameters                       = local.path_parameters["/v1/{proxy+}"]
              responses                        = {}
              "x-amazon-apigateway-integration" = local.proxy_integration["OPTIONS"]
            }
          },
        )
      },
    )
    components = {
      securitySchemes = {
        (local.authorizer_name) = {
          type                           = "apiKey"
          name                           = "Authorization"
          "in"                           = "header"
          "x-amazon-apigateway-authtype" = "custom"
          # REQUEST, not TOKEN: the event lists every Authorization value
          # (multiValueHeaders), so the authorizer refuses a request carrying
          # two instead of checking whichever API Gateway picked.
          "x-amazon-apigateway-authorizer" = {
            type                         = "request"
            identitySource               = "method.request.header.Authorization"
            authorizerUri                = var.authorizer_function_invoke_arn
            authorizerResultTtlInSeconds = var.authorizer_result_ttl_in_seconds
          }
        }
      }
    }
  }

  access_log_format = jsonencode({
    requestId          = "$context.requestId"
    extendedRequestId  = "$context.extendedRequestId"
    requestTime        = "$context.requestTime"
    sourceIp           = "$context.identity.sourceIp"
    userAgent          = "$context.identity.userAgent"
    httpMethod         = "$context.httpMethod"
    resourcePath       = "$context.resourcePath"
    path               = "$context.path"
    protocol           = "$context.protocol"
    status             = "$context.status"
    responseLength     = "$context.responseLength"
    responseLatency    = "$context.responseLatency"
    integrationStatus  = "$context.integration.status"
    integrationLatency = "$context.integration.latency"
    integrationError   = "$context.integration.error"
    authorizerStatus   = "$context.authorizer.status"
    authorizerLatency  = "$context.authorizer.latency"
    authorizerError    = "$context.authorizer.error"
    principalId        = "$context.authorizer.principalId"
    wafResponseCode    = "$context.wafResponseCode"
    errorType          = "$context.error.responseType"
    errorMessage       = "$context.error.message"
    xrayTraceId        = "$context.xrayTraceId"
  })

  # Every method setting repeats these: a per-route entry replaces the stage-wide
  # one for that method, it does not inherit from it.
  method_settings = {
    metrics_enabled    = true
    logging_level      = "ERROR"
    data_trace_enabled = false # full request/response logging would record tokens and passwords
  }

  log_groups_arn_prefix = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:"
}

# ---------------------------------------------------------------------------
# Origin verification
# ---------------------------------------------------------------------------

# A random_password resource, not an ephemeral one: CloudFront's origin header
# and the web ACL both need the value, so it is kept (sensitive) in the state.
resource "random_password" "origin_verify" {
  length  = 64
  special = false

  keepers = {
    version = var.origin_verify_secret_version
  }
}

# ---------------------------------------------------------------------------
# REST API
# ---------------------------------------------------------------------------

resource "aws_api_gateway_rest_api" "this" {
  name        = local.name
  description = "Rampart public API (${var.resource_prefix}); reachable only through CloudFront"
  body        = jsonencode(local.openapi)

  # REGIONAL, not EDGE: our own CloudFront distribution (with its WAF) is the
  # edge, and a regional web ACL can sit on this stage.
  endpoint_configuration {
    types = ["REGIONAL"]
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id

  triggers = {
    redeployment = sha1(aws_api_gateway_rest_api.this.body)
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${local.name}/access"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.log_kms_key_arn

  tags = var.tags
}

# API Gateway writes execution logs (logging_level ERROR) to this fixed name and
# would otherwise create it itself, unencrypted and kept forever.
resource "aws_cloudwatch_log_group" "execution" {
  name              = "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.this.id}/${var.stage_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.log_kms_key_arn

  tags = var.tags
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:Answers are per caller (tokens, sessions, one-time codes) and must never be served from a cache; CloudFront uses CachingDisabled for the same reason.
  #checkov:skip=CKV2_AWS_51:A client certificate authenticates API Gateway to HTTP backends; the only one is auth-proxy behind the VPC link and the internal NLB (reachable from the VPC's nodes and pods too, which the NetworkPolicies of deploy/ limit), and it verifies each caller's token itself, so who connects grants nothing.
  #checkov:skip=CKV2_AWS_77:The stage's ACL has KnownBadInputs (Log4j). AnonymousIpList would judge CloudFront's addresses, the only callers admitted here, as hosting-provider IPs; viewer addresses are filtered by the edge ACL.
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format          = local.access_log_format
  }

  tags = var.tags

  depends_on = [aws_api_gateway_account.this, aws_cloudwatch_log_group.execution]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:Answers are per caller and must never be cached (see the stage).
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = local.method_settings.metrics_enabled
    logging_level          = local.method_settings.logging_level
    data_trace_enabled     = local.method_settings.data_trace_enabled
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
    caching_enabled        = false
    cache_data_encrypted   = true
  }
}

resource "aws_api_gateway_method_settings" "route" {
  #checkov:skip=CKV_AWS_225:Answers are per caller and must never be cached (see the stage).
  for_each = var.route_throttling

  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  # "POST /v1/auth/login" -> "v1/auth/login/POST"
  method_path = "${trimprefix(split(" ", each.key)[1], "/")}/${split(" ", each.key)[0]}"

  settings {
    metrics_enabled        = local.method_settings.metrics_enabled
    logging_level          = local.method_settings.logging_level
    data_trace_enabled     = local.method_settings.data_trace_enabled
    throttling_rate_limit  = each.value.rate_limit
    throttling_burst_limit = each.value.burst_limit
    caching_enabled        = false
    cache_data_encrypted   = true
  }

  lifecycle {
    precondition {
      condition     = contains(local.routes, each.key)
      error_message = "route_throttling key \"${each.key}\" is not a route of this API."
    }
  }
}

# API Gateway may invoke the functions only from this API: the auth function
# from this stage, the authorizer as one of this API's authorizers.
resource "aws_lambda_permission" "auth" {
  statement_id  = "AllowInvokeFrom-${local.name}"
  action        = "lambda:InvokeFunction"
  function_name = var.auth_function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/${var.stage_name}/*"
}

resource "aws_lambda_permission" "authorizer" {
  statement_id  = "AllowAuthorizerFrom-${local.name}"
  action        = "lambda:InvokeFunction"
  function_name = var.authorizer_function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/authorizers/*"
}

# ---------------------------------------------------------------------------
# API Gateway account setting: the role every REST API of this account and
# region writes CloudWatch logs through.
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "cloudwatch_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  name                 = "${var.resource_prefix}-apigateway-cloudwatch"
  description          = "API Gateway account-wide CloudWatch Logs role (execution and access logs)"
  permissions_boundary = var.iam_permissions_boundary_arn
  assume_role_policy   = data.aws_iam_policy_document.cloudwatch_assume.json

  tags = var.tags
}

# Account-wide by nature, so it covers the log groups API Gateway writes for any
# API here: its execution logs and access logs named /aws/apigateway/*. Write
# actions only; no reads of the logs.
data "aws_iam_policy_document" "cloudwatch" {
  statement {
    sid     = "WriteApiGatewayLogs"
    effect  = "Allow"
    actions = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = [
      "${local.log_groups_arn_prefix}API-Gateway-Execution-Logs_*",
      "${local.log_groups_arn_prefix}/aws/apigateway/*",
    ]
  }

  statement {
    sid       = "FindLogGroups"
    effect    = "Allow"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["${local.log_groups_arn_prefix}*"]
  }
}

resource "aws_iam_role_policy" "cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  name   = "write-api-gateway-logs"
  role   = aws_iam_role.cloudwatch[0].id
  policy = data.aws_iam_policy_document.cloudwatch.json
}

resource "aws_api_gateway_account" "this" {
  count = var.manage_api_gateway_account ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.cloudwatch[0].arn

  depends_on = [aws_iam_role_policy.cloudwatch]
}

# ---------------------------------------------------------------------------
# Web ACL on the stage: only CloudFront's requests pass
# ---------------------------------------------------------------------------

resource "aws_wafv2_web_acl" "this" {
  name        = local.name
  description = "Admits only requests that came through the ${var.resource_prefix} CloudFront distribution"
  scope       = "REGIONAL"

  # Anything not allowed below is refused with 403: a direct call to the
  # execute-api URL lacks the origin-verify header.
  default_action {
    block {}
  }

  # Cheap defence in depth behind the edge ACL (Log4j, bad inputs), evaluated
  # before the allow rule so it still applies to CloudFront's requests.
  rule {
    name     = "known-bad-inputs"
    priority = 0

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
      metric_name                = "${local.name}-known-bad-inputs"
      # Its samples would be CloudFront's requests, origin secret included:
      # GetSampledRequests returns every header.
      sampled_requests_enabled = false
    }
  }

  rule {
    name     = "from-cloudfront"
    priority = 1

    action {
      allow {}
    }

    statement {
      byte_match_statement {
        search_string         = random_password.origin_verify.result
        positional_constraint = "EXACTLY"

        field_to_match {
          single_header {
            name = local.origin_verify_header_name
          }
        }

        text_transformation {
          priority = 0
          type     = "NONE"
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-from-cloudfront"
      # Samples would show the secret header to anyone who can read the ACL.
      sampled_requests_enabled = false
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.name
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

resource "aws_wafv2_web_acl_association" "this" {
  resource_arn = aws_api_gateway_stage.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}

# WAF log groups must be named aws-waf-logs-*.
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${local.name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.log_kms_key_arn

  tags = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  # Bearer tokens, session cookies and the origin secret stay out of the logs.
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

  redacted_fields {
    single_header {
      name = local.origin_verify_header_name
    }
  }
}

# ---------------------------------------------------------------------------
# VPC link -> internal NLB -> EKS nodes (auth-proxy NodePort)
# ---------------------------------------------------------------------------

resource "aws_security_group" "lb" {
  name        = "${var.resource_prefix}-proxy-lb"
  description = "Internal NLB in front of auth-proxy: reached only through the API Gateway VPC link"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.resource_prefix}-proxy-lb" })
}

# No ingress rule admits the listener. The VPC link is PrivateLink traffic,
# which the NLB exempts from its inbound rules
# (enforce_security_group_inbound_rules_on_private_link_traffic = "off", as API
# Gateway requires); any other connection, from anywhere in the VPC, is dropped.
# Only path MTU discovery is let in.
resource "aws_vpc_security_group_ingress_rule" "lb_path_mtu" {
  security_group_id = aws_security_group.lb.id
  description       = "ICMP fragmentation-needed from the VPC (path MTU discovery)"
  cidr_ipv4         = var.vpc_cidr_block
  ip_protocol       = "icmp"
  from_port         = 3
  to_port           = 4

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "lb_to_nodes" {
  security_group_id            = aws_security_group.lb.id
  description                  = "Requests and health checks to auth-proxy's NodePort"
  referenced_security_group_id = var.node_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = var.proxy_node_port
  to_port                      = var.proxy_node_port

  tags = var.tags
}

# The nodes take the NodePort from the load balancer only.
resource "aws_vpc_security_group_ingress_rule" "nodes_from_lb" {
  security_group_id            = var.node_security_group_id
  description                  = "auth-proxy NodePort from the ${local.lb_name} NLB"
  referenced_security_group_id = aws_security_group.lb.id
  ip_protocol                  = "tcp"
  from_port                    = var.proxy_node_port
  to_port                      = var.proxy_node_port

  tags = var.tags
}

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_20:A network load balancer with one TCP listener has no HTTP layer to redirect; only the VPC link reaches it.
  #checkov:skip=CKV_AWS_91:NLB access logs cover TLS listeners only; this TCP listener's requests are each in the stage's JSON access log and the WAF log.
  name                             = local.lb_name
  internal                         = true
  load_balancer_type               = "network"
  subnets                          = var.private_subnet_ids
  security_groups                  = [aws_security_group.lb.id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.enable_deletion_protection

  # API Gateway's VPC link connects over PrivateLink from addresses it does not
  # publish; it requires this off. Non-PrivateLink traffic still meets the
  # (empty) inbound rules.
  enforce_security_group_inbound_rules_on_private_link_traffic = "off"

  tags = var.tags
}

resource "aws_lb_target_group" "this" {
  name        = local.lb_name
  vpc_id      = var.vpc_id
  target_type = "instance"
  protocol    = "TCP"
  port        = var.proxy_node_port
  # The source is the NLB, not the (unknowable) VPC link address, so the node
  # rule above that references the NLB's group admits it.
  preserve_client_ip   = false
  deregistration_delay = 30

  health_check {
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = var.tags
}

resource "aws_lb_listener" "this" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = var.tags
}

# The managed node group's instances join the target group as they launch.
resource "aws_autoscaling_attachment" "this" {
  #checkov:skip=CKV2_AWS_15:The Auto Scaling group is the EKS managed node group's, whose health checks EKS owns; a failed readiness probe is a pod's, not a reason to replace the node.
  count = var.node_group_autoscaling_group_count

  autoscaling_group_name = var.node_group_autoscaling_group_names[count.index]
  lb_target_group_arn    = aws_lb_target_group.this.arn

  lifecycle {
    precondition {
      condition     = length(var.node_group_autoscaling_group_names) == var.node_group_autoscaling_group_count
      error_message = "node_group_autoscaling_group_count must equal the number of node_group_autoscaling_group_names."
    }
  }
}

resource "aws_api_gateway_vpc_link" "this" {
  name        = "${var.resource_prefix}-proxy"
  description = "API Gateway to the internal auth-proxy NLB"
  target_arns = [aws_lb.this.arn]

  tags = var.tags
}
