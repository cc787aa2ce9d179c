# A private bucket for artifacts and logs: owner-enforced objects (no ACLs), no
# public access, versioned, encrypted, expiring, TLS 1.2+ only, and written by
# AWS services only as var.log_writers says.

data "aws_caller_identity" "current" {}

locals {
  # Per writer: PutObject under its prefix and, for a service that writes with the
  # bucket-owner-full-control ACL, the ACL check it makes first; each only for its
  # source ARN in this account.
  writer_statements = flatten([
    for writer in var.log_writers : [
      for grant in concat(
        [{ sid = "LogsFrom", action = "s3:PutObject", resource = "${aws_s3_bucket.this.arn}/${writer.prefix}/*", acl = writer.owner_full_control }],
        writer.owner_full_control ? [{ sid = "AclCheckBy", action = "s3:GetBucketAcl", resource = aws_s3_bucket.this.arn, acl = false }] : [],
      ) : {
        Sid       = "${grant.sid}${join("", [for part in split(".", writer.service) : title(part)])}"
        Effect    = "Allow"
        Principal = { Service = writer.service }
        Action    = grant.action
        Resource  = grant.resource
        Condition = {
          StringEquals = merge(
            { "aws:SourceAccount" = data.aws_caller_identity.current.account_id },
            grant.acl ? { "s3:x-amz-acl" = "bucket-owner-full-control" } : {},
          )
          ArnLike = { "aws:SourceArn" = writer.source_arn }
        }
      }
    ]
  ])
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:These buckets hold build artifacts (rebuilt by any pipeline run) and logs kept for investigation; a second-Region copy is not worth its cost.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events of these buckets; CodePipeline tracks its own artifacts.
  #checkov:skip=CKV_AWS_18:Access logging is per bucket (access_log_target): the artifact bucket logs to the access-log bucket; the log buckets do not log access to themselves, which would write logs about logs into themselves.
  #checkov:skip=CKV_AWS_145:kms_key_arn is null only for the target of S3 server access logging, which supports SSE-S3 only; every other bucket is SSE-KMS.
  bucket        = var.name
  force_destroy = var.force_destroy

  tags = var.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    # No ACLs: access is only what the bucket and IAM policies grant.
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # One data key per bucket rather than per object: fewer KMS calls.
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire"
    status = "Enabled"

    filter {}

    expiration {
      days = var.expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_upload_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_logging" "this" {
  count = var.access_log_target == null ? 0 : 1

  bucket        = aws_s3_bucket.this.id
  target_bucket = var.access_log_target.bucket
  target_prefix = var.access_log_target.prefix
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(local.writer_statements, [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "DenyOutdatedTls"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
        Condition = { NumericLessThan = { "s3:TlsVersion" = "1.2" } }
      },
    ])
  })

  depends_on = [aws_s3_bucket_public_access_block.this]
}
