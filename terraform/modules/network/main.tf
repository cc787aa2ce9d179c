# The VPC everything that runs inside AWS's network lives in: EKS nodes, the
# internal load balancer behind API Gateway's VPC link, and the interface
# endpoints that keep calls to AWS APIs off the internet. Per Availability Zone,
# a private subnet (nodes, load balancer, endpoints) and a public one that holds
# only a NAT gateway: nothing here gets a public address.

# The first az_count zones in name order. No state filter, so a zone that is
# briefly impaired does not drop out and shift every subnet; new zones get later
# letters, so they never displace the chosen ones.
data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:The set is pinned by slice(names, 0, az_count) in name order (see comment above), not used whole.
  # Local Zones and Wavelength Zones lack EKS and NAT gateways.
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  azs        = slice(sort(data.aws_availability_zones.available.names), 0, var.az_count)
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Private subnets take the first six eighths of the VPC (EKS gives every pod a
  # VPC address), public ones six sixty-fourths of the seventh: the two ranges
  # never overlap for up to six zones.
  private_cidrs = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr_block, 3, i)]
  public_cidrs  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr_block, 6, 48 + i)]

  nat_count = var.single_nat_gateway ? 1 : var.az_count

  # Interface endpoints: service suffix => whether its endpoint policy confines it
  # to this account's principals. STS stays open because IRSA's
  # AssumeRoleWithWebIdentity is an unsigned call (no principal account), and
  # ECR because nodes pull EKS add-on images from AWS-owned registries.
  interface_endpoints = {
    "kms"            = true
    "secretsmanager" = true
    "logs"           = true
    "xray"           = true
    "sts"            = false
    "ecr.api"        = false
    "ecr.dkr"        = false
  }

  # IAM action prefix of each endpoint's service, for its endpoint policy.
  endpoint_action_prefix = {
    "kms"            = "kms"
    "secretsmanager" = "secretsmanager"
    "logs"           = "logs"
    "xray"           = "xray"
    "dynamodb"       = "dynamodb"
  }
}

resource "aws_vpc" "this" {
  cidr_block = var.vpc_cidr_block
  # Private DNS of the interface endpoints needs both.
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = merge(var.tags, { Name = "${var.resource_prefix}-vpc" })

  lifecycle {
    precondition {
      condition     = length(data.aws_availability_zones.available.names) >= var.az_count
      error_message = "az_count is larger than the number of Availability Zones this region offers."
    }
  }
}

# The default security group admits nothing and sends nothing, so a resource
# launched without an explicit group is isolated rather than open.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.resource_prefix}-default-deny" })
}

resource "aws_subnet" "private" {
  count = var.az_count

  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = local.private_cidrs[count.index]

  tags = merge(var.tags, {
    Name = "${var.resource_prefix}-private-${local.azs[count.index]}"
    # Where Kubernetes places internal load balancers, should one be created.
    "kubernetes.io/role/internal-elb" = "1"
  })
}

resource "aws_subnet" "public" {
  count = var.az_count

  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = local.public_cidrs[count.index]
  # Only NAT gateways live here, with their own Elastic IPs; nothing launched in
  # these subnets gets a public address by default.
  map_public_ip_on_launch = false

  tags = merge(var.tags, { Name = "${var.resource_prefix}-public-${local.azs[count.index]}" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.resource_prefix}-igw" })
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.resource_prefix}-public" })
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count = var.az_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  count = local.nat_count

  domain = "vpc"

  tags = merge(var.tags, { Name = "${var.resource_prefix}-nat-${local.azs[count.index]}" })

  depends_on = [aws_internet_gateway.this]
}

# Outbound-only internet access for the private subnets (container images not in
# ECR, the token issuer's public JWKS, AWS APIs without an endpoint here).
resource "aws_nat_gateway" "this" {
  count = local.nat_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id

  tags = merge(var.tags, { Name = "${var.resource_prefix}-nat-${local.azs[count.index]}" })

  depends_on = [aws_internet_gateway.this]
}

# One route table per zone, so switching single_nat_gateway only changes routes.
resource "aws_route_table" "private" {
  count = var.az_count

  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.resource_prefix}-private-${local.azs[count.index]}" })
}

resource "aws_route" "private_nat" {
  count = var.az_count

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[var.single_nat_gateway ? 0 : count.index].id
}

resource "aws_route_table_association" "private" {
  count = var.az_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# ---------------------------------------------------------------------------
# VPC endpoints
# ---------------------------------------------------------------------------

resource "aws_security_group" "endpoints" {
  name        = "${var.resource_prefix}-vpc-endpoints"
  description = "Interface VPC endpoints: HTTPS from inside the VPC only"
  vpc_id      = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.resource_prefix}-vpc-endpoints" })
}

# Endpoints only answer; the group has no egress rule (Terraform removes the
# default allow-all one).
resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  security_group_id = aws_security_group.endpoints.id
  description       = "HTTPS to AWS APIs from workloads in this VPC"
  cidr_ipv4         = aws_vpc.this.cidr_block
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443

  tags = var.tags
}

# Endpoint policy for the data-plane services: usable only by principals of this
# account (and of var.endpoint_principal_accounts), so the endpoint cannot carry
# calls made with foreign credentials (data exfiltration to another account's
# key, table or log group).
data "aws_iam_policy_document" "endpoint" {
  for_each = local.endpoint_action_prefix

  statement {
    sid       = "OnlyThisAccountsPrincipals"
    effect    = "Allow"
    actions   = ["${each.value}:*"]
    resources = ["*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:PrincipalAccount"
      values   = concat([local.account_id], var.endpoint_principal_accounts)
    }
  }
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_endpoints

  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true
  policy              = each.value ? data.aws_iam_policy_document.endpoint[each.key].json : null

  tags = merge(var.tags, { Name = "${var.resource_prefix}-${replace(each.key, ".", "-")}" })
}

# Gateway endpoints are free and carry DynamoDB and S3 traffic (ECR image layers
# are served from S3) without the NAT gateway.
resource "aws_vpc_endpoint" "dynamodb" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${local.region}.dynamodb"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id
  policy            = data.aws_iam_policy_document.endpoint["dynamodb"].json

  tags = merge(var.tags, { Name = "${var.resource_prefix}-dynamodb" })
}

# The S3 endpoint keeps the default (full) policy: node bootstrap and ECR pulls
# read AWS-owned buckets, some anonymously, which a principal-account condition
# would refuse with no fallback route. What S3 data a workload may touch is
# bounded by its IAM role.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id

  tags = merge(var.tags, { Name = "${var.resource_prefix}-s3" })
}

# ---------------------------------------------------------------------------
# Flow logs
# ---------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = "/aws/vpc/${var.resource_prefix}-flow-logs"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.log_kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    # Confused-deputy guard: only flow logs of this account may use the role.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc-flow-log/*"]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  name                 = "${var.resource_prefix}-vpc-flow-logs"
  description          = "Lets VPC Flow Logs write to ${aws_cloudwatch_log_group.flow_logs.name}"
  permissions_boundary = var.iam_permissions_boundary_arn
  assume_role_policy   = data.aws_iam_policy_document.flow_logs_assume.json

  tags = var.tags
}

# Only the streams of the one log group; the group itself exists already, so no
# CreateLogGroup.
data "aws_iam_policy_document" "flow_logs" {
  statement {
    sid       = "WriteFlowLogStreams"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = [aws_cloudwatch_log_group.flow_logs.arn, "${aws_cloudwatch_log_group.flow_logs.arn}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

resource "aws_flow_log" "this" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = var.flow_log_traffic_type
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn             = aws_iam_role.flow_logs.arn
  max_aggregation_interval = 60

  tags = merge(var.tags, { Name = "${var.resource_prefix}-vpc" })
}
