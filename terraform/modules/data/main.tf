# DynamoDB tables (var.tables, the "tables" of schema/platform.json in this
# repository's environments): on-demand billing, point-in-time recovery,
# encryption with a customer managed key, deletion protection, and TTL, streams
# and global secondary indexes as each table says.

locals {
  # Every attribute used by a table or index key. Key attributes
  # are all strings (composite "TYPE#id" keys), so each is declared as "S".
  key_attributes = {
    for name, table in var.tables : name => distinct(compact(concat(
      [table.hash_key, table.range_key],
      flatten([for index in values(table.global_secondary_indexes) : [index.hash_key, index.range_key]]),
    )))
  }
}

resource "aws_dynamodb_table" "this" {
  for_each = var.tables

  name                        = "${var.resource_prefix}-${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash_key
  range_key                   = each.value.range_key
  deletion_protection_enabled = true
  stream_enabled              = each.value.stream != null
  stream_view_type            = each.value.stream

  dynamic "attribute" {
    for_each = local.key_attributes[each.key]

    content {
      name = attribute.value
      type = "S"
    }
  }

  dynamic "global_secondary_index" {
    for_each = each.value.global_secondary_indexes

    content {
      name            = global_secondary_index.key
      hash_key        = global_secondary_index.value.hash_key
      range_key       = global_secondary_index.value.range_key
      projection_type = "ALL"
    }
  }

  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [each.value.ttl_attribute]

    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  tags = merge(var.tags, { Name = "${var.resource_prefix}-${each.key}", Purpose = each.value.purpose })
}
