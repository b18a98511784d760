//! Scanned consent forms: checked by content, kept once under their SHA-256, served back only to
//! the business that uploaded them, and named by paper opt-ins.

use reqwest::{Method, Response, StatusCode};
use serde_json::json;
use sha2::Digest;

use crate::helpers::{TestApp, expect_json, expect_problem, on_both_backends, text};

on_both_backends!(scanned_forms_are_kept_once_by_their_hash_and_named_by_paper_opt_ins);

async fn upload(app: &TestApp, key: &str, content: Vec<u8>) -> Response {
    let request = app.as_business(Method::POST, "/v1/documents", key).header("content-type", "application/pdf");
    request.body(content).send().await.unwrap()
}

async fn scanned_forms_are_kept_once_by_their_hash_and_named_by_paper_opt_ins(app: TestApp) {
    let acme = app.create_business("Acme Shoes").await;
    let rival = app.create_business("Rival Shoes").await;
    let scan = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n".to_vec();
    let sha256 = hex::encode(sha2::Sha256::digest(&scan));
    let kept = expect_json(upload(&app, &acme.key, scan.clone()).await, StatusCode::CREATED).await;
    assert_eq!((text(&kept["sha256"]), text(&kept["media_type"])), (sha256.clone(), "application/pdf".to_owned()));
    assert_eq!((kept["size"].as_u64(), kept["new"].as_bool()), (Some(scan.len() as u64), Some(true)));
    let again = expect_json(upload(&app, &acme.key, scan.clone()).await, StatusCode::OK).await;
    assert_eq!((text(&again["sha256"]), again["new"].as_bool()), (sha256.clone(), Some(false)), "kept once");

    // The type is told by the content, whatever the header or name says.
    let page = b"<html><script>alert(1)</script></html>".to_vec();
    expect_problem(upload(&app, &acme.key, page).await, StatusCode::UNPROCESSABLE_ENTITY, "document_type_unsupported")
        .await;
    expect_problem(upload(&app, &acme.key, Vec::new()).await, StatusCode::UNPROCESSABLE_ENTITY, "document_empty").await;
    let huge = [b"%PDF-".as_slice(), &vec![b' '; 10 * 1024 * 1024]].concat();
    expect_problem(upload(&app, &acme.key, huge).await, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;

    let path = format!("/v1/documents/{sha256}");
    let served = app.as_business(Method::GET, &path, &acme.key).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "application/pdf");
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    assert_eq!(served.bytes().await.unwrap().to_vec(), scan);
    let upper = format!("/v1/documents/{}", sha256.to_uppercase());
    assert_eq!(app.as_business(Method::GET, &upper, &acme.key).send().await.unwrap().status(), StatusCode::OK);
    // Another business, or a made-up hash, finds nothing.
    let foreign = app.as_business(Method::GET, &path, &rival.key).send().await.unwrap();
    expect_problem(foreign, StatusCode::NOT_FOUND, "document_not_found").await;
    let bogus = app.as_business(Method::GET, "/v1/documents/..%2F..%2Fetc%2Fpasswd", &acme.key).send().await.unwrap();
    expect_problem(bogus, StatusCode::NOT_FOUND, "document_not_found").await;

    // A paper opt-in names the scan; its evidence shows in the contact's history.
    let notice = app.register_notice(&acme.key).await;
    let opt_in = json!({"phone": "+14155552671", "categories": ["offers"], "method": "paper", "notice_id": notice,
        "evidence": {"document_sha256": sha256, "collected_by": "store 12", "location": "Main St"}});
    expect_json(app.post_opt_in(&acme.key, &opt_in).await, StatusCode::CREATED).await;
    let events = expect_json(app.get_contact_events(&acme.key, "+14155552671").await, StatusCode::OK).await;
    assert_eq!(events["events"][0]["event"]["evidence"]["document_sha256"], sha256.as_str());
}
