"""/v1/vaults through the real SDK (strict), on each backend, and vaults referenced by sessions."""

from __future__ import annotations

import anthropic
import pytest

from tests.support.factories import make_session


def test_create_retrieve_update_archive(client: anthropic.Anthropic) -> None:
    vault = client.beta.vaults.create(display_name="Alice", metadata={"external_user_id": "usr_1", "x": "1"})

    assert vault.id.startswith("vlt_") and vault.type == "vault" and vault.archived_at is None
    assert (vault.display_name, vault.metadata) == ("Alice", {"external_user_id": "usr_1", "x": "1"})
    assert client.beta.vaults.retrieve(vault.id) == vault

    same = client.beta.vaults.update(vault.id, display_name=None)
    renamed = client.beta.vaults.update(vault.id, display_name="Alice B", metadata={"x": None, "y": "2"})
    assert same == vault
    assert (renamed.display_name, renamed.metadata) == ("Alice B", {"external_user_id": "usr_1", "y": "2"})
    assert renamed.updated_at > vault.updated_at

    archived = client.beta.vaults.archive(vault.id)
    assert archived.archived_at is not None
    assert client.beta.vaults.archive(vault.id).archived_at == archived.archived_at
    with pytest.raises(anthropic.BadRequestError, match="is archived"):
        client.beta.vaults.update(vault.id, display_name="late")
    assert vault.id not in [v.id for v in client.beta.vaults.list(limit=100)]
    assert vault.id in [v.id for v in client.beta.vaults.list(include_archived=True, limit=100)]


def test_list_pages_newest_first(client: anthropic.Anthropic) -> None:
    made = [client.beta.vaults.create(display_name=f"page-{i}").id for i in range(5)]

    first = client.beta.vaults.list(limit=2)
    seen = [v.id for v in first.data]
    page = first
    while page.next_page and not set(made) <= set(seen):
        page = client.beta.vaults.list(limit=2, page=page.next_page)
        seen += [v.id for v in page.data]

    assert len(first.data) == 2 and first.next_page
    assert [i for i in seen if i in made] == list(reversed(made))
    assert len(seen) == len(set(seen))


def test_delete_takes_the_credentials(client: anthropic.Anthropic) -> None:
    vault = client.beta.vaults.create(display_name="gone")
    credential = client.beta.vaults.credentials.create(
        vault.id, auth={"type": "static_bearer", "token": "t0k", "mcp_server_url": "https://mcp.example.com/"}
    )

    deleted = client.beta.vaults.delete(vault.id)

    assert (deleted.id, deleted.type) == (vault.id, "vault_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.beta.vaults.retrieve(vault.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.vaults.credentials.retrieve(credential.id, vault_id=vault.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.vaults.delete(vault.id)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"display_name": ""}, "display_name"),
        ({"display_name": "x" * 256}, "display_name"),
        ({"display_name": "two\nlines"}, "control characters"),
        ({"display_name": "m", "metadata": {f"k{i}": "v" for i in range(17)}}, "at most 16"),
        ({"display_name": "m", "metadata": {"k": "v" * 513}}, "at most 512"),
    ],
)
def test_bad_vault_input_is_a_400(
    client: anthropic.Anthropic, params: dict[str, object], message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError, match=message):
        client.beta.vaults.create(**params)  # type: ignore[arg-type]


def test_unknown_vault_and_bad_cursor(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError, match="vlt_nope"):
        client.beta.vaults.retrieve("vlt_nope")
    with pytest.raises(anthropic.BadRequestError, match="invalid page cursor"):
        client.beta.vaults.list(page="garbage")
    with pytest.raises(anthropic.BadRequestError, match="limit"):
        client.beta.vaults.list(limit=101)


def test_sessions_reference_existing_active_vaults(client: anthropic.Anthropic) -> None:
    first = client.beta.vaults.create(display_name="one")
    second = client.beta.vaults.create(display_name="two")
    archived = client.beta.vaults.create(display_name="old")
    client.beta.vaults.archive(archived.id)

    session = make_session(client, vault_ids=[first.id, second.id])

    assert session.vault_ids == [first.id, second.id]
    with pytest.raises(anthropic.NotFoundError, match=r"vault_ids\[1\]: Vault vlt_missing not found"):
        make_session(client, vault_ids=[first.id, "vlt_missing"])
    with pytest.raises(anthropic.BadRequestError, match=r"vault_ids\[0\]: .* is archived"):
        make_session(client, vault_ids=[archived.id])
    with pytest.raises(anthropic.BadRequestError, match="listed twice"):
        make_session(client, vault_ids=[first.id, first.id])
    # A session that references a vault keeps working after the vault is archived.
    client.beta.vaults.archive(first.id)
    assert client.beta.sessions.retrieve(session.id).vault_ids == [first.id, second.id]
