"""Pushing release folders to the Hub safely: one commit per repo, nothing overwritten unless asked, no
commit when nothing changed, retries on network errors, and the token never printed or written."""

from __future__ import annotations

import hashlib
import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.utils.sha import git_hash
from transformers.utils import logging

from ..errors import UsageError

logger = logging.get_logger(__name__)

IGNORED_REMOTE = {".gitattributes"}


@dataclass
class PushResult:
    repo_id: str
    status: str  # "created", "updated", "unchanged"
    commit: Optional[str] = None


def require_token(token: Optional[str] = None) -> str:
    """The Hub token from the argument, ``HF_TOKEN`` or ``huggingface-cli login``; ``ValueError`` if none."""
    token = token or get_token()
    if not token:
        raise UsageError(
            "no Hugging Face token: run `huggingface-cli login` or set HF_TOKEN (use --dry_run to push nothing)"
        )
    return token


def check_write_access(api: HfApi, namespace: Optional[str]) -> str:
    """The namespace the release writes to (``namespace``, or the token's user), after checking that the token may
    write there: not a read-only token, a member of that organisation with more than read access, and, for a
    fine-grained token, one scoped to write its repos. ``UsageError`` naming the fix otherwise."""
    try:
        me = _with_retries(api.whoami, "reading the token's account")
    except HfHubHTTPError as error:
        if error.response is not None and error.response.status_code == 401:
            raise UsageError(
                "the Hugging Face token was refused (401): log in again with `huggingface-cli login` or "
                "set a valid HF_TOKEN"
            ) from None
        raise
    user = me["name"]
    namespace = namespace or user
    token = (me.get("auth") or {}).get("accessToken") or {}
    role = token.get("role")
    fix = "create a token with write access at https://huggingface.co/settings/tokens and log in with it"
    if role == "read":
        raise UsageError(f"the Hugging Face token is read-only: it cannot create or write repos in {namespace}: {fix}")
    if namespace != user:
        membership = next((org for org in me.get("orgs") or [] if org.get("name") == namespace), None)
        if membership is None:
            raise UsageError(
                f"{user} is not a member of the organisation {namespace}: join it, or pass "
                "--hub_organization with one you belong to (or leave it out for your own namespace)"
            )
        if membership.get("roleInOrg") == "read":
            raise UsageError(
                f"{user} has read access only in {namespace}: ask its admins for write access, or pass "
                "another --hub_organization"
            )
    if role == "fineGrained":
        scoped = ((token.get("fineGrained") or {}).get("scoped")) or []
        allowed = any(
            (entry.get("entity") or {}).get("name") == namespace and "repo.write" in entry.get("permissions", [])
            for entry in scoped
        )
        if not allowed:
            raise UsageError(
                f"the fine-grained Hugging Face token may not write repos in {namespace} (no repo.write "
                f"scope for it): {fix}, or add that scope to this token"
            )
    return namespace


@dataclass
class RepoPlan:
    """What a release will do to one repo, found before anything is written to the Hub."""

    repo_id: str
    folder: Path
    action: str  # "create", "fill" (exists, empty), "unchanged", "replace" (differs; --overwrite given)


def preflight(api: HfApi, repos: dict[str, Path], overwrite: bool = False) -> list[RepoPlan]:
    """Reads the Hub for every repo of the release, writing nothing: which exist, and whether their content is ours.

    One that exists with other content is an error unless ``overwrite``, so that a release that cannot complete
    stops before its first commit, not after some repos were pushed."""
    plans, conflicts = [], []
    for repo_id, folder in repos.items():
        try:
            info = _with_retries(lambda: api.model_info(repo_id), f"reading {repo_id}")
        except RepositoryNotFoundError:
            plans.append(RepoPlan(repo_id, folder, "create"))
            continue
        remote = _with_retries(lambda: _remote_files(api, repo_id, info.sha), f"listing {repo_id}")
        if not remote:
            action = "fill"
        elif _same_files(_local_files(folder), remote):
            action = "unchanged"
        else:
            action = "replace"
            conflicts.append(repo_id)
        plans.append(RepoPlan(repo_id, folder, action))
    if conflicts and not overwrite:
        others = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise UsageError(
            f"Hub repo {conflicts[0]}{others} already exists with other content: pass --overwrite to replace "
            "it, or choose another name; nothing was pushed"
        )
    return plans


def _local_files(folder: Path) -> dict[str, Path]:
    return {path.relative_to(folder).as_posix(): path for path in sorted(folder.rglob("*")) if path.is_file()}


def _remote_files(api: HfApi, repo_id: str, revision: str) -> dict:
    return {
        item.path: item
        for item in api.list_repo_tree(repo_id, recursive=True, revision=revision)
        if hasattr(item, "blob_id") and item.path not in IGNORED_REMOTE
    }


def _same_files(local: dict[str, Path], remote: dict) -> bool:
    return set(local) == set(remote) and all(_same_content(local[path], remote[path]) for path in local)


def _same_content(local: Path, remote) -> bool:
    data = local.read_bytes()
    lfs = getattr(remote, "lfs", None)
    if lfs is not None:
        return lfs.sha256 == hashlib.sha256(data).hexdigest()
    return remote.blob_id == git_hash(data)  # the git object id the Hub reports for a regular file


def _network_errors() -> tuple[type, ...]:
    """Connection and timeout errors of whichever HTTP client this huggingface_hub uses (requests up to 0.x,
    httpx from 1.x)."""
    errors: list[type] = []
    for module_name, names in (
        ("requests", ("ConnectionError", "Timeout")),
        ("httpx", ("TransportError",)),
        ("httpx2", ("TransportError",)),
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        errors += [getattr(module, name) for name in names if hasattr(module, name)]
    return tuple(errors)


NETWORK_ERRORS = _network_errors()


def _with_retries(action, what: str, attempts: int = 3, wait: float = 2.0):
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except HfHubHTTPError as error:
            status = error.response.status_code if error.response is not None else None
            if status is None or (status < 500 and status != 429):  # 429: rate-limited, worth waiting for
                raise
            reason = f"HTTP {status}"
        except NETWORK_ERRORS as error:
            reason = type(error).__name__
        if attempt == attempts:
            raise ConnectionError(
                f"{what} failed after {attempts} attempts ({reason}): nothing was committed; rerun to retry"
            )
        logger.warning(f"{what}: {reason}, retrying ({attempt}/{attempts - 1})")
        time.sleep(wait * attempt)


def push_folder(
    api: HfApi, folder: Path, repo_id: str, commit_message: str, private: bool = False, overwrite: bool = False
) -> PushResult:
    """Makes ``repo_id`` hold exactly ``folder``, in one commit.

    An existing repo whose files differ is an error unless ``overwrite``; identical content makes no commit.
    """
    local = _local_files(folder)
    try:
        info = _with_retries(lambda: api.model_info(repo_id), f"reading {repo_id}")
    except RepositoryNotFoundError:
        info = None
    if info is None:
        _with_retries(lambda: api.create_repo(repo_id, private=private, exist_ok=True), f"creating {repo_id}")
        info = _with_retries(lambda: api.model_info(repo_id), f"reading {repo_id}")
        status = "created"
    else:
        status = "updated"
    head = info.sha  # the commit this push builds on: a push by someone else in between makes ours fail, not clobber
    remote = _with_retries(lambda: _remote_files(api, repo_id, head), f"listing {repo_id}")
    same = _same_files(local, remote)
    if status == "updated" and remote and not same and not overwrite:
        raise UsageError(
            f"Hub repo {repo_id} already exists with other content: pass --overwrite to replace it, "
            "or choose another name"
        )
    _make_private(api, repo_id, info, private)
    operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(file)) for path, file in local.items()]
    operations += [CommitOperationDelete(path_in_repo=path) for path in remote if path not in local]
    try:
        commit = _with_retries(
            lambda: api.create_commit(
                repo_id, operations=[_fresh(op) for op in operations], commit_message=commit_message, parent_commit=head
            ),
            f"pushing {repo_id}",
        )
    except HfHubHTTPError as error:
        if error.response is None or error.response.status_code not in (409, 412):
            raise
        # The head moved. Either a retry follows a commit of ours that landed before its answer was lost, or
        # someone else pushed: only the first counts as pushed.
        now = api.model_info(repo_id).sha
        if _same_files(local, _remote_files(api, repo_id, now)):
            return PushResult(repo_id, status, now)
        raise ConnectionError(
            f"pushing {repo_id}: the repo changed on the Hub while this push was prepared (another "
            "commit landed first): nothing of this release was committed; rerun to compare again"
        ) from None
    # create_commit leaves out files whose content the Hub already holds, and makes no commit when none is left
    return PushResult(repo_id, "unchanged" if commit.oid == head else status, commit.oid)


def _make_private(api: HfApi, repo_id: str, info, private: bool) -> None:
    """``--private`` applies to repos that already exist, too; a private repo is never made public unasked."""
    if private and not getattr(info, "private", False):
        _with_retries(lambda: api.update_repo_settings(repo_id, private=True), f"making {repo_id} private")


def _fresh(operation):
    """A commit operation can be sent once: retries need new ones."""
    if isinstance(operation, CommitOperationAdd):
        return CommitOperationAdd(path_in_repo=operation.path_in_repo, path_or_fileobj=operation.path_or_fileobj)
    return operation


LANDED = ("created", "updated", "unchanged")


def publish(
    api: HfApi,
    pushes: list[tuple[str, Path, str]],
    report: list[dict],
    report_path: Path,
    private: bool = False,
    overwrite: bool = False,
) -> None:
    """Pushes each ``(repo_id, folder, commit message)`` in turn, after :func:`preflight` passed for all of them.

    ``report`` (one entry per push) is rewritten to ``report_path`` after every repo, so it always says which repos
    landed (``created``, ``updated``, ``unchanged``), which ``failed`` and which were ``not pushed``. If a push fails
    midway the error says how many landed; a rerun finds those unchanged (no new commit) and pushes the rest."""
    from ..budget.runs import write_json

    for entry in report:
        entry["status"] = "not pushed"
    for entry, (repo_id, folder, message) in zip(report, pushes):
        try:
            result = push_folder(api, folder, repo_id, message, private=private, overwrite=overwrite)
        except (ConnectionError, HfHubHTTPError, UsageError) as error:
            entry["status"] = "failed"
            write_json(report_path, report)
            if isinstance(error, UsageError):
                raise
            landed = sum(item["status"] in LANDED for item in report)
            reason = str(error).splitlines()[0]
            raise ConnectionError(
                f"{reason}; {landed} of {len(report)} repos landed ({report_path} lists which): "
                "rerun the same command to push the rest"
            ) from None
        entry.update(status=result.status, commit=result.commit)
        write_json(report_path, report)
        print(f"{result.status:>9}  https://huggingface.co/{repo_id}")
