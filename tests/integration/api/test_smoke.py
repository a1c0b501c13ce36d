def test_register_login_create_get(client, sqs, job_queue) -> None:
    r = client.post("/v1/auth/register", {"email": "new@example.com", "password": "0123456789ab"})
    assert r.status == 201, r.body
    client.login("new@example.com", "0123456789ab")
    created = client.post("/v1/jobs", {"type": "noop"})
    assert created.status == 201, created.body
    got = client.get(f"/v1/jobs/{created.body['id']}")
    assert got.status == 200, got.body
    assert got.body["status"] == "queued"
