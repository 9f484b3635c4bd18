"""Pipeline: hash -> match -> policy -> outcome (ignore / review / act), each step recorded.

Embedded by default (an in-process bounded queue); with ``REDRESS_BROKER_URL``
set, Celery workers over Redis. docs/pipeline.md describes the policy.
"""

from redress.pipeline.container import PipelineContainer, PipelineParts, build_pipeline
from redress.pipeline.interfaces import (
    ClassifierScore,
    Hasher,
    Matcher,
    MatchQuery,
    MediaClassifier,
    MediaDigest,
    Outcome,
    VpdqQueryFrame,
)
from redress.pipeline.keys import ApiKeyService, CreatedKey, KeyInfo, Scope
from redress.pipeline.policy import (
    BankRule,
    Decision,
    Policy,
    PolicySignals,
    SourceRule,
    load_policy,
)
from redress.pipeline.service import (
    HashSubmission,
    MediaSubmission,
    PipelineService,
    ProcessReport,
    PublicMatch,
    ScanContext,
    ScanResult,
    ScanRunner,
    SightingFacts,
)
from redress.pipeline.text import DetailKind, PersonalDetail, find_personal_details

__all__ = [
    "ApiKeyService",
    "BankRule",
    "ClassifierScore",
    "CreatedKey",
    "Decision",
    "DetailKind",
    "HashSubmission",
    "Hasher",
    "KeyInfo",
    "MatchQuery",
    "Matcher",
    "MediaClassifier",
    "MediaDigest",
    "MediaSubmission",
    "Outcome",
    "PersonalDetail",
    "PipelineContainer",
    "PipelineParts",
    "PipelineService",
    "Policy",
    "PolicySignals",
    "ProcessReport",
    "PublicMatch",
    "ScanContext",
    "ScanResult",
    "ScanRunner",
    "Scope",
    "SightingFacts",
    "SourceRule",
    "VpdqQueryFrame",
    "build_pipeline",
    "find_personal_details",
    "load_policy",
]
