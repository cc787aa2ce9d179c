# The SES identity the auth function mails from: one-time codes (sign-up
# confirmation, password reset) and security notices to account owners. A
# domain identity with Easy DKIM, sending through a configuration set that
# requires TLS to the receiving server and stops mailing addresses that bounced
# or complained (the account-level suppression list), as SES asks of senders
# who must keep their reputation to keep sending.

resource "aws_sesv2_configuration_set" "this" {
  configuration_set_name = "${var.resource_prefix}-mail"

  delivery_options {
    # A code in a message sent in the clear could be read on the way.
    tls_policy = "REQUIRE"
  }

  reputation_options {
    reputation_metrics_enabled = true
  }

  sending_options {
    sending_enabled = true
  }

  suppression_options {
    suppressed_reasons = ["BOUNCE", "COMPLAINT"]
  }

  tags = var.tags
}

resource "aws_sesv2_email_identity" "this" {
  email_identity         = var.sender_domain
  configuration_set_name = aws_sesv2_configuration_set.this.configuration_set_name

  dkim_signing_attributes {
    next_signing_key_length = "RSA_2048_BIT"
  }

  tags = var.tags
}

resource "aws_sesv2_email_identity_mail_from_attributes" "this" {
  count = var.mail_from_subdomain == null ? 0 : 1

  email_identity         = aws_sesv2_email_identity.this.email_identity
  behavior_on_mx_failure = "REJECT_MESSAGE"
  mail_from_domain       = "${var.mail_from_subdomain}.${var.sender_domain}"
}
