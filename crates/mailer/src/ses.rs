//! Mail sent through Amazon SES (v2 `SendEmail`), from a verified sender identity.

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use tracing::instrument;

use crate::{CodeMail, MailError, Mailer, Notice};

fn content(text: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError::Unavailable(e.to_string()))
}

#[derive(Debug, Clone)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    sender: String,
    configuration_set: Option<String>,
}

impl SesMailer {
    /// `sender` must be an SES-verified identity (an address, or one at a verified domain);
    /// `configuration_set`, if given, routes bounces and complaints to its event destinations.
    pub fn new(client: aws_sdk_sesv2::Client, sender: &str, configuration_set: Option<String>) -> Self {
        Self {
            client,
            sender: sender.to_owned(),
            configuration_set,
        }
    }

    async fn deliver(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        let message = Message::builder()
            .subject(content(subject)?)
            .body(Body::builder().text(content(body)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.sender)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|error| MailError::Unavailable(aws_sdk_sesv2::error::DisplayErrorContext(error).to_string()))
    }
}

#[async_trait::async_trait]
impl Mailer for SesMailer {
    #[instrument(name = "mail.send", skip_all, fields(notice = notice.label()))]
    async fn send(&self, to: &str, notice: Notice) -> Result<(), MailError> {
        self.deliver(to, notice.subject(), notice.body()).await
    }

    #[instrument(name = "mail.send_code", skip_all, fields(purpose = mail.purpose.label()))]
    async fn send_code(&self, to: &str, mail: &CodeMail) -> Result<(), MailError> {
        self.deliver(to, mail.subject(), &mail.body()).await
    }
}
