"""The public surface of the pipeline, actions and web packages is pinned."""

from __future__ import annotations

import redress.actions
import redress.pipeline
import redress.web


def test_pipeline_surface() -> None:
    assert set(redress.pipeline.__all__) == {
        "ApiKeyService", "BankRule", "ClassifierScore", "CreatedKey", "Decision", "DetailKind",
        "HashSubmission", "Hasher", "KeyInfo", "MatchQuery", "Matcher", "MediaClassifier",
        "MediaDigest", "MediaSubmission", "Outcome", "PersonalDetail", "PipelineContainer",
        "PipelineParts", "PipelineService", "Policy", "PolicySignals", "ProcessReport",
        "PublicMatch", "ScanContext", "ScanResult", "ScanRunner", "Scope", "SightingFacts",
        "SourceRule", "VpdqQueryFrame", "build_pipeline", "find_personal_details", "load_policy",
    }  # fmt: skip
    for name in redress.pipeline.__all__:
        assert getattr(redress.pipeline, name) is not None


def test_actions_surface() -> None:
    assert set(redress.actions.__all__) == {
        "BLOCKED_BANK", "DELIVERY_HEADER", "EVENT_HEADER", "SIGNATURE_HEADER", "ActionKind",
        "ActionRequest", "ActionResult", "ActionTarget", "Actioner", "BlockReuploadActioner",
        "WebhookDelivery", "WebhookSender", "WebhookSignatureError", "sign", "verify_signature",
    }  # fmt: skip


def test_web_surface() -> None:
    assert set(redress.web.__all__) == {"AppState", "create_app"}
