output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC (the source the interface endpoints and the internal load balancer admit)."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Private subnets, one per Availability Zone in zone order: EKS nodes, the internal load balancer."
  value       = aws_subnet.private[*].id
}

output "private_subnet_cidr_blocks" {
  description = "IPv4 CIDRs of the private subnets, in zone order."
  value       = aws_subnet.private[*].cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets, one per Availability Zone in zone order; they hold only the NAT gateways."
  value       = aws_subnet.public[*].id
}

output "vpc_endpoint_security_group_id" {
  description = "Security group of the interface VPC endpoints (HTTPS from the VPC CIDR)."
  value       = aws_security_group.endpoints.id
}

output "availability_zones" {
  description = "Availability Zones the subnets are in, in subnet order."
  value       = local.azs
}

output "private_route_table_ids" {
  description = "Route tables of the private subnets, in subnet order."
  value       = aws_route_table.private[*].id
}

output "nat_gateway_public_ips" {
  description = "Public addresses the private subnets reach the internet from (for allow-lists elsewhere)."
  value       = aws_eip.nat[*].public_ip
}

output "vpc_endpoint_ids" {
  description = "VPC endpoint IDs keyed by service (kms, secretsmanager, logs, xray, sts, ecr.api, ecr.dkr, dynamodb, s3)."
  value = merge(
    { for service, endpoint in aws_vpc_endpoint.interface : service => endpoint.id },
    { dynamodb = aws_vpc_endpoint.dynamodb.id, s3 = aws_vpc_endpoint.s3.id },
  )
}

output "cloudwatch_log_group_name" {
  description = "Log group of the VPC flow log."
  value       = aws_cloudwatch_log_group.flow_logs.name
}
