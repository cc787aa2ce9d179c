# One Lambda per crate in functions/ (var.functions), from its cargo lambda zip:
# the bootstrap binary on the provided.al2023 runtime. Each function has its own
# role (least privilege: its own log group, X-Ray, its dead-letter queue, and
# exactly the statements the environment composes for what its code calls), a
# KMS-encrypted log group, a KMS-encrypted SQS dead-letter queue, and active
# X-Ray tracing.

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id

  kms_key_arn = coalesce(var.kms_key_arn, var.log_kms_key_arn)
  in_vpc      = length(var.vpc_subnet_ids) > 0

  function_names = { for name in keys(var.functions) : name => "${var.resource_prefix}-${name}" }
}

data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

# --- Roles ------------------------------------------------------------------

# No aws:SourceAccount condition: Lambda assumes an execution role only for a
# function it was given with iam:PassRole, which cannot pass a role to another
# account, so the cross-account confused deputy that condition guards against
# has no way in (unlike the service roles of API Gateway and flow logs, which
# carry it).
data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = var.functions

  name                 = "${local.function_names[each.key]}-function"
  description          = "Execution role of the ${local.function_names[each.key]} Lambda"
  permissions_boundary = var.iam_permissions_boundary_arn
  assume_role_policy   = data.aws_iam_policy_document.assume.json

  tags = merge(var.tags, { Name = "${local.function_names[each.key]}-function" })

  lifecycle {
    precondition {
      condition     = length("${local.function_names[each.key]}-function") <= 64
      error_message = "The role name ${local.function_names[each.key]}-function is longer than IAM's 64 characters: shorten resource_prefix or the crate name."
    }
  }
}

# What the Lambda runtime itself needs, instead of AWSLambdaBasicExecutionRole
# (logs:* on every log group) and AWSXRayDaemonWriteAccess.
data "aws_iam_policy_document" "runtime" {
  for_each = var.functions

  statement {
    sid       = "OwnLogGroupOnly"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this[each.key].arn}:*"]
  }

  statement {
    # X-Ray has no resource-level permissions for trace uploads: "*" is the only
    # resource these two actions accept, and they read nothing.
    sid       = "XRayWrite"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    # Lambda sends failed asynchronous events with the function's own role.
    sid       = "OwnDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter[each.key].arn]
  }

  statement {
    # SendMessage to an SSE-KMS queue makes SQS generate and check a data key
    # with the sender's permissions; only through SQS. (The environment
    # variables need nothing here: Lambda decrypts them through the KMS grant
    # it creates when the function is deployed.)
    sid       = "DeadLetterQueueKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [local.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${local.region}.amazonaws.com"]
    }
  }

  dynamic "statement" {
    # Lambda creates and removes the function's network interfaces in the VPC
    # with the execution role (what AWSLambdaVPCAccessExecutionRole grants),
    # here scoped to this account's interfaces, subnets and security group.
    for_each = local.in_vpc ? [1] : []
    content {
      sid     = "VpcNetworkInterfaces"
      actions = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
      resources = concat(
        ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"],
        [for id in var.vpc_subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${id}"],
        [for sg in aws_security_group.this : sg.arn],
      )
    }
  }

  dynamic "statement" {
    # EC2 Describe* calls support no resource-level permissions.
    for_each = local.in_vpc ? [1] : []
    content {
      sid       = "VpcDescribe"
      actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "runtime" {
  for_each = var.functions

  name   = "runtime"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.runtime[each.key].json
}

# Exactly what the environment grants for the code's AWS calls (checked against
# the Rust code by scripts/check_iam.py). A function that calls no AWS API
# (the authorizer) gets no such policy.
resource "aws_iam_role_policy" "statements" {
  for_each = { for name, function in var.functions : name => function if length(function.policy_statements) > 0 }

  name = "calls"
  role = aws_iam_role.this[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    # A Condition only where the statement has one (IAM refuses an empty block).
    Statement = [for s in each.value.policy_statements : merge({
      Sid      = s.sid
      Effect   = "Allow"
      Action   = s.actions
      Resource = s.resources
    }, { for key, value in { Condition = s.conditions } : key => value if length(value) > 0 })]
  })
}

# --- Logs and dead-letter queues ----------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  for_each = var.functions

  # Lambda's default group name, created here first so that retention and
  # encryption hold from the first invocation.
  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.log_kms_key_arn

  tags = merge(var.tags, { Name = "/aws/lambda/${local.function_names[each.key]}" })
}

resource "aws_sqs_queue" "dead_letter" {
  for_each = var.functions

  name                              = "${local.function_names[each.key]}-dlq"
  message_retention_seconds         = var.dead_letter_queue_message_retention_seconds
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  tags = merge(var.tags, { Name = "${local.function_names[each.key]}-dlq" })
}

# Failed events can hold request data: refuse any access that is not over TLS.
resource "aws_sqs_queue_policy" "dead_letter" {
  for_each = var.functions

  queue_url = aws_sqs_queue.dead_letter[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "sqs:*"
      Resource  = aws_sqs_queue.dead_letter[each.key].arn
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

# --- Network (only when the functions run in the VPC) --------------------------

resource "aws_security_group" "this" {
  count = local.in_vpc ? 1 : 0

  name        = "${var.resource_prefix}-functions"
  description = "Lambda functions of ${var.resource_prefix}: no inbound, HTTPS out only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.resource_prefix}-functions" })

  lifecycle {
    precondition {
      condition     = var.vpc_id != null
      error_message = "vpc_id must be set when vpc_subnet_ids is."
    }
  }
}

# HTTPS only: AWS APIs (through the VPC endpoints or the NAT) and the issuer's
# JWKS the authorizer fetches over the internet. Nothing calls a function over
# the network, so there is no inbound rule.
resource "aws_vpc_security_group_egress_rule" "https" {
  count = local.in_vpc ? 1 : 0

  security_group_id = aws_security_group.this[0].id
  description       = "HTTPS to AWS APIs and the token issuer"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# --- Functions -----------------------------------------------------------------

resource "aws_lambda_function" "this" {
  # Code signing: the zips are built by cargo lambda in the pipeline,
  # byte-identical across builds, and pinned here by source_code_hash. AWS
  # Signer signs only S3 objects, so enforcing a signing config needs the
  # pipeline to sign and publish the zips to S3 first; until then
  # code_signing_config_arn stays optional.
  #checkov:skip=CKV_AWS_272:Zips are deployed from the reproducible cargo lambda build pinned by source_code_hash; set var.code_signing_config_arn once the pipeline signs them (AWS Signer needs S3 artifacts).
  for_each = var.functions

  function_name    = local.function_names[each.key]
  description      = "Rampart ${each.key} (functions/${each.key})"
  role             = aws_iam_role.this[each.key].arn
  filename         = each.value.zip_path
  source_code_hash = filebase64sha256(each.value.zip_path)
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]

  memory_size                    = each.value.memory_size
  timeout                        = each.value.timeout
  reserved_concurrent_executions = each.value.reserved_concurrent_executions
  code_signing_config_arn        = var.code_signing_config_arn
  kms_key_arn                    = local.kms_key_arn

  dynamic "environment" {
    for_each = length(each.value.environment) > 0 ? [each.value.environment] : []
    content {
      variables = environment.value
    }
  }

  tracing_config {
    mode = "Active"
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letter[each.key].arn
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this[each.key].name
  }

  dynamic "vpc_config" {
    for_each = local.in_vpc ? [1] : []
    content {
      subnet_ids         = var.vpc_subnet_ids
      security_group_ids = [aws_security_group.this[0].id]
    }
  }

  tags = merge(var.tags, { Name = local.function_names[each.key] })

  # The role must be able to log, trace and reach its dead-letter queue before
  # the first invocation.
  depends_on = [aws_iam_role_policy.runtime]
}
