"""The command line of ``taskkit.service`` and the servicer generated from a family's kinds."""

from __future__ import annotations

import pytest
from transmute.media.v1 import media_pb2_grpc

from taskkit import service
from taskkit.api import servicer_for
from taskkit.rpc import rpc_name
from taskkit.runtime import Kind
from tests.unit.runtime.family_under_test import (
    family_of,
    parse_none,
)


def test_main_refuses_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    family = family_of("rt", Kind("alpha", parse_none, lambda ctx: None))  # type: ignore[arg-type,return-value]
    with pytest.raises(SystemExit) as exited:
        service.main(family, ["--role", "bogus"])
    assert exited.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_a_family_servicer_is_generated_from_its_kinds() -> None:
    """One Create RPC per kind, named from the kind; a kind the proto lacks fails at import."""
    servicer = servicer_for(media_pb2_grpc.MediaServicer, ["video", "adaptive_video"])
    assert rpc_name("adaptive_video") == "CreateAdaptiveVideoTask"
    assert "CreateVideoTask" in vars(servicer) and "CreateAdaptiveVideoTask" in vars(servicer)
    assert vars(servicer)["CreateImageTask"] is not vars(servicer)["CreateVideoTask"]
    with pytest.raises(TypeError, match="no CreateSpeechTask RPC for kind speech"):
        servicer_for(media_pb2_grpc.MediaServicer, ["speech"])
