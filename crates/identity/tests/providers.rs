//! Both identity adapters sign users up once, find them as unconfirmed, and report a repeated
//! sign-up as AlreadyExists rather than an error.

use rampart_identity::cognito::provision_user_pool;
use rampart_identity::{
    CognitoIdentity, Email, EmbeddedIdentity, IdentityProvider, Password, SignUpOutcome, UserStatus,
};

async fn signs_up_and_finds(provider: &dyn IdentityProvider) {
    let email = Email::parse(&format!("ada-{}@example.com", rampart_testkit::unique_suffix())).expect("email");
    let password = Password::parse("correct horse battery staple").expect("password");
    assert!(provider.find_user(&email).await.expect("lookup").is_none());

    let SignUpOutcome::Created { user_id } = provider.sign_up(&email, &password).await.expect("sign up") else {
        panic!("first sign-up must create the user");
    };
    let user = provider.find_user(&email).await.expect("lookup").expect("found");
    assert_eq!(user.id, user_id);
    assert_eq!(user.status, UserStatus::Unconfirmed);
    assert_eq!(
        provider.sign_up(&email, &password).await.expect("repeat"),
        SignUpOutcome::AlreadyExists
    );
}

#[tokio::test]
async fn embedded_provider_signs_up_and_finds_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let provider = EmbeddedIdentity::open(&dir.path().join("identity.sqlite")).expect("open");
    signs_up_and_finds(&provider).await;
}

#[tokio::test]
async fn cognito_provider_signs_up_and_finds_users() {
    let aws = rampart_testkit::aws().await;
    let client = aws_sdk_cognitoidentityprovider::Client::new(&aws.config);
    let pool = provision_user_pool(&client, &aws.prefix).await.expect("provision");
    assert!(pool.client_secret.is_some(), "the schema asks for a client secret");
    let again = provision_user_pool(&client, &aws.prefix).await.expect("re-provision");
    assert_eq!(
        (&pool.user_pool_id, &pool.client_id),
        (&again.user_pool_id, &again.client_id)
    );
    let provider = CognitoIdentity::new(client, &pool.user_pool_id, &pool.client_id, pool.client_secret);
    signs_up_and_finds(&provider).await;
}
