# The EKS cluster core and auth-proxy run on: a private API endpoint only,
# access entries only (authentication_mode = "API": no aws-auth ConfigMap, and
# the creator gets no implicit admin), Kubernetes secrets envelope-encrypted
# with a KMS key of its own, every control-plane log type, and one managed node
# group in the private subnets (IMDSv2 only, encrypted volumes). Each service
# gets an IRSA role trusted only by its ServiceAccount, granting exactly the
# statements the environment composes for what its code calls.

locals {
  partition    = data.aws_partition.current.partition
  account_root = "arn:${local.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
  cluster_name = "${var.resource_prefix}-eks"

  oidc_issuer = trimprefix(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://")

  # IRSA roles: the services of var.service_policy_statements, and the VPC CNI
  # (so the nodes' own role needs no network-interface permissions).
  irsa_subjects = merge(
    { for service in keys(var.service_policy_statements) : service => "system:serviceaccount:${var.service_account_namespace}:${service}" },
    { "vpc-cni" = "system:serviceaccount:kube-system:aws-node" },
  )
}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

# --- Secrets encryption key ---------------------------------------------------

resource "aws_kms_key" "secrets" {
  description             = "${local.cluster_name}: envelope encryption of Kubernetes secrets"
  key_usage               = "ENCRYPT_DECRYPT"
  deletion_window_in_days = var.kms_deletion_window_in_days
  enable_key_rotation     = true
  # The account root administers the key, which lets the cluster role's IAM
  # policy below grant its use; no other principal, no wildcard principal.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountRootAdministersKey"
      Effect    = "Allow"
      Principal = { AWS = local.account_root }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })

  tags = merge(var.tags, { Name = "${local.cluster_name}-secrets" })
}

resource "aws_kms_alias" "secrets" {
  name          = "alias/${local.cluster_name}-secrets"
  target_key_id = aws_kms_key.secrets.key_id
}

# --- Cluster ------------------------------------------------------------------

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    sid     = "EksAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name                 = "${local.cluster_name}-cluster"
  description          = "Role of the ${local.cluster_name} control plane"
  permissions_boundary = var.iam_permissions_boundary_arn
  assume_role_policy   = data.aws_iam_policy_document.cluster_assume.json

  tags = merge(var.tags, { Name = "${local.cluster_name}-cluster" })
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

# What EKS needs to envelope-encrypt secrets with the key above, on that key only.
resource "aws_iam_role_policy" "cluster_encryption" {
  name = "secrets-encryption"
  role = aws_iam_role.cluster.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "SecretsKey"
      Effect   = "Allow"
      Action   = ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"]
      Resource = aws_kms_key.secrets.arn
    }]
  })
}

# Created before the cluster so that retention and encryption hold from the
# first log line (EKS would otherwise create it unencrypted, kept forever).
resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/eks/${local.cluster_name}/cluster"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.log_kms_key_arn

  tags = merge(var.tags, { Name = "/aws/eks/${local.cluster_name}/cluster" })
}

# Who may reach the private API endpoint besides the nodes (which use the
# cluster security group EKS creates).
resource "aws_security_group" "endpoint" {
  name        = "${local.cluster_name}-endpoint"
  description = "Clients of the ${local.cluster_name} private API endpoint"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${local.cluster_name}-endpoint" })
}

resource "aws_vpc_security_group_ingress_rule" "endpoint" {
  for_each = toset(var.endpoint_ingress_cidr_blocks)

  security_group_id = aws_security_group.endpoint.id
  description       = "Kubernetes API from ${each.key}"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.key
}

resource "aws_eks_cluster" "this" {
  name     = local.cluster_name
  role_arn = aws_iam_role.cluster.arn
  version  = var.kubernetes_version

  enabled_cluster_log_types = var.cluster_log_types

  # The add-ons are EKS managed add-ons below, versioned with the cluster,
  # instead of unmanaged copies EKS would install.
  bootstrap_self_managed_addons = false

  vpc_config {
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [aws_security_group.endpoint.id]
    # The API server is not on the internet: kubectl and the deploy run from
    # inside the VPC.
    endpoint_private_access = true
    endpoint_public_access  = false
  }

  access_config {
    # Access entries only (no aws-auth ConfigMap to edit by hand), and no
    # implicit admin for whoever ran terraform apply.
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = false
  }

  encryption_config {
    resources = ["secrets"]

    provider {
      key_arn = aws_kms_key.secrets.arn
    }
  }

  upgrade_policy {
    # Upgrades are planned: no silent move to paid extended support.
    support_type = "STANDARD"
  }

  tags = merge(var.tags, { Name = local.cluster_name })

  depends_on = [
    aws_iam_role_policy_attachment.cluster,
    aws_iam_role_policy.cluster_encryption,
    aws_cloudwatch_log_group.this,
  ]
}

# --- Access entries -------------------------------------------------------------

resource "aws_eks_access_entry" "admin" {
  for_each = toset(var.cluster_admin_principal_arns)

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.key
  type          = "STANDARD"

  tags = var.tags
}

resource "aws_eks_access_policy_association" "admin" {
  for_each = toset(var.cluster_admin_principal_arns)

  cluster_name  = aws_eks_cluster.this.name
  principal_arn = aws_eks_access_entry.admin[each.key].principal_arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

  access_scope {
    type = "cluster"
  }
}

# --- IRSA -----------------------------------------------------------------------

# AWS validates the issuer's certificate against its trusted CAs, so no
# thumbprint is pinned here.
resource "aws_iam_openid_connect_provider" "this" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]

  tags = merge(var.tags, { Name = "${local.cluster_name}-irsa" })
}

# Only the one ServiceAccount, and only tokens minted for STS.
data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.irsa_subjects

  statement {
    sid     = "ServiceAccountAssumesRole"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.this.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = [each.value]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "irsa" {
  for_each = local.irsa_subjects

  name                 = "${var.resource_prefix}-${each.key}-irsa"
  description          = "IRSA role of ${each.value} on ${local.cluster_name}"
  permissions_boundary = var.iam_permissions_boundary_arn
  assume_role_policy   = data.aws_iam_policy_document.irsa_assume[each.key].json

  tags = merge(var.tags, { Name = "${var.resource_prefix}-${each.key}-irsa" })

  lifecycle {
    precondition {
      condition     = length("${var.resource_prefix}-${each.key}-irsa") <= 64
      error_message = "The role name ${var.resource_prefix}-${each.key}-irsa is longer than IAM's 64 characters: shorten resource_prefix or the service name."
    }
  }
}

# Exactly what the environment grants for the service's AWS calls (checked
# against the Rust code by scripts/check_iam.py). A service that calls no AWS
# API (auth-proxy) gets a role without permissions.
resource "aws_iam_role_policy" "service" {
  for_each = { for service, statements in var.service_policy_statements : service => statements if length(statements) > 0 }

  name = "calls"
  role = aws_iam_role.irsa[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    # A Condition only where the statement has one (IAM refuses an empty block).
    Statement = [for s in each.value : merge({
      Sid      = s.sid
      Effect   = "Allow"
      Action   = s.actions
      Resource = s.resources
    }, { for key, value in { Condition = s.conditions } : key => value if length(value) > 0 })]
  })
}

resource "aws_iam_role_policy_attachment" "vpc_cni" {
  role       = aws_iam_role.irsa["vpc-cni"].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKS_CNI_Policy"
}

# --- Nodes ------------------------------------------------------------------------

data "aws_iam_policy_document" "node_assume" {
  statement {
    sid     = "Ec2AssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name                 = "${local.cluster_name}-node"
  description          = "Role of the ${local.cluster_name} nodes: join the cluster and pull images, nothing else"
  permissions_boundary = var.iam_permissions_boundary_arn
  assume_role_policy   = data.aws_iam_policy_document.node_assume.json

  tags = merge(var.tags, { Name = "${local.cluster_name}-node" })
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset(["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.key}"
}

resource "aws_launch_template" "node" {
  name                   = "${local.cluster_name}-node"
  description            = "Nodes of ${local.cluster_name}: IMDSv2 only, encrypted root volume"
  update_default_version = true

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
    # One hop: pods (one hop further, behind the node's network namespace)
    # cannot read the node role's credentials; they use IRSA.
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.node_volume_size_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${local.cluster_name}-node" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { Name = "${local.cluster_name}-node" })
  }

  tags = merge(var.tags, { Name = "${local.cluster_name}-node" })
}

resource "aws_eks_node_group" "this" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "${local.cluster_name}-default"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.private_subnet_ids
  version         = aws_eks_cluster.this.version
  ami_type        = var.node_ami_type
  capacity_type   = "ON_DEMAND"
  instance_types  = var.node_instance_types

  scaling_config {
    min_size     = var.node_min_size
    desired_size = var.node_desired_size
    max_size     = var.node_max_size
  }

  update_config {
    max_unavailable = 1
  }

  launch_template {
    id      = aws_launch_template.node.id
    version = aws_launch_template.node.latest_version
  }

  tags = merge(var.tags, { Name = "${local.cluster_name}-default" })

  lifecycle {
    # Scaling after creation belongs to the autoscaler or the operator.
    ignore_changes = [scaling_config[0].desired_size]
  }

  # Nodes become Ready only once the CNI runs (the cluster has no self-managed
  # add-ons); the role must be complete before they join.
  depends_on = [
    aws_iam_role_policy_attachment.node,
    aws_eks_addon.vpc_cni,
    aws_eks_addon.kube_proxy,
  ]
}

# --- Add-ons ------------------------------------------------------------------------

# The default version of each add-on for the cluster's Kubernetes version, so a
# version upgrade of the cluster upgrades them too.
data "aws_eks_addon_version" "this" {
  for_each = toset(["vpc-cni", "kube-proxy", "coredns", "metrics-server"])

  addon_name         = each.key
  kubernetes_version = aws_eks_cluster.this.version
}

resource "aws_eks_addon" "vpc_cni" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "vpc-cni"
  addon_version               = data.aws_eks_addon_version.this["vpc-cni"].version
  service_account_role_arn    = aws_iam_role.irsa["vpc-cni"].arn
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
  # The Kubernetes NetworkPolicies (load balancer -> auth-proxy -> core only)
  # are enforced by the VPC CNI's network policy agent.
  configuration_values = jsonencode({ enableNetworkPolicy = "true" })

  tags = var.tags

  depends_on = [aws_iam_role_policy_attachment.vpc_cni]
}

resource "aws_eks_addon" "kube_proxy" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "kube-proxy"
  addon_version               = data.aws_eks_addon_version.this["kube-proxy"].version
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  tags = var.tags
}

# CoreDNS runs on the nodes, so it comes after them.
resource "aws_eks_addon" "coredns" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "coredns"
  addon_version               = data.aws_eks_addon_version.this["coredns"].version
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  tags = var.tags

  depends_on = [aws_eks_node_group.this]
}

# The resource metrics the HorizontalPodAutoscalers of core and the auth-proxy
# scale on (deploy/base); it runs on the nodes too.
resource "aws_eks_addon" "metrics_server" {
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = "metrics-server"
  addon_version               = data.aws_eks_addon_version.this["metrics-server"].version
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"

  tags = var.tags

  depends_on = [aws_eks_node_group.this]
}
