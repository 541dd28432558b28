use crate::helpers::{SEED_PASSWORD, TestApp, conformance};

#[tokio::test]
async fn registering_then_logging_in_returns_a_token() {
    conformance(async |app: &TestApp| {
        let created = app.register(" New.User@Example.com ", "long enough password", "New User").await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        assert_eq!(created.body["email"], "new.user@example.com");
        assert_eq!(created.body["name"], "New User");

        let session = app.log_in("new.user@example.com", "long enough password").await;
        assert_eq!(session.status, 200, "{:?}", session.body);
        assert_eq!(session.body["token_type"], "Bearer");
        assert_eq!(session.body["user_id"], created.body["id"]);
        assert!(session.body["token"].as_str().is_some_and(|t| t.starts_with("v1.")));
    })
    .await;
}

#[tokio::test]
async fn logging_in_with_a_wrong_password_or_unknown_email_returns_401() {
    conformance(async |app: &TestApp| {
        let wrong = app.log_in("user1@example.com", "not the password").await;
        assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
        let unknown = app.log_in("nobody@example.com", SEED_PASSWORD).await;
        assert_eq!((unknown.status, unknown.code()), (401, "invalid_credentials"));
        let seeded = app.log_in("user1@example.com", SEED_PASSWORD).await;
        assert_eq!(seeded.status, 200);
    })
    .await;
}

#[tokio::test]
async fn registering_a_taken_email_returns_409() {
    conformance(async |app: &TestApp| {
        let first = app.register("twice@example.com", "long enough password", "Ann").await;
        assert_eq!(first.status, 201);
        let again = app.register("TWICE@example.com", "another password", "Bob").await;
        assert_eq!((again.status, again.code()), (409, "email_taken"));
        let seeded = app.register("user2@example.com", "long enough password", "Eve").await;
        assert_eq!((seeded.status, seeded.code()), (409, "email_taken"));
    })
    .await;
}

#[tokio::test]
async fn invalid_registrations_return_422() {
    conformance(async |app: &TestApp| {
        for (email, password, name) in [
            ("not-an-email", "long enough password", "Ann"),
            ("ann@example.com", "short", "Ann"),
            ("ann@example.com", "long enough password", "   "),
            ("ann@example.com", &"p".repeat(129), "Ann"),
        ] {
            let reply = app.register(email, password, name).await;
            assert_eq!((reply.status, reply.code()), (422, "validation_failed"), "{email}/{name}: {:?}", reply.body);
        }
    })
    .await;
}
