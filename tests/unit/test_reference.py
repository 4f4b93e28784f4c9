"""Reference data: facts from the privacy policy, validation of the files, classification."""

from __future__ import annotations

import re
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fideslang.default_taxonomy import DEFAULT_TAXONOMY

from reference import (
    CCPA_CATEGORY_NAMES,
    Classification,
    ReferenceData,
    ReferenceViolation,
    Role,
    Safeguard,
    check_reference,
    classify,
    classify_event,
    default_reference_directory,
    format_reference,
    load_reference,
)
from reference.errors import ReferenceDataError
from schemas.model import DisclosureEvent

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAILING = Path(__file__).resolve().parents[1] / "data" / "reference_failing"
FAILING_CASES = sorted(FAILING.glob("failing_*.yml"))

BROADCASTER_CATEGORY = "user.behavior.purchase_history.broadcaster_category"


def ms(text: str) -> int:
    return (datetime.fromisoformat(text) - EPOCH) // timedelta(milliseconds=1)


NOW = ms("2026-03-01T12:00:00+00:00")


@pytest.fixture(scope="module")
def ref() -> ReferenceData:
    return load_reference()


def copy_reference(tmp_path: Path) -> Path:
    target = tmp_path / "reference"
    shutil.copytree(default_reference_directory(), target)
    return target


def apply_case(directory: Path, case: dict[str, Any]) -> None:
    """Apply one failing_*.yml change (append, set or text) to a copy of the data."""
    path = directory / case["file"]
    if "text" in case:
        path.write_text(case["text"], encoding="utf-8")
        return
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "set" in case:
        data.update(case["set"])
    else:
        (section,) = data
        data[section].extend(case["append"])
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def load_case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return case


# --------------------------------------------------------------------------- shipped data


def test_shipped_reference_has_no_problems() -> None:
    assert check_reference() == []


def test_version_is_manifest_version_plus_content_digest(
    ref: ReferenceData, tmp_path: Path
) -> None:
    assert re.fullmatch(r"2026\.11\.0\+[0-9a-f]{8}", ref.version)
    assert ref.version.startswith(ref.manifest.version + "+")
    directory = copy_reference(tmp_path)
    assert load_reference(directory).version == ref.version
    with (directory / "purposes.yaml").open("a", encoding="utf-8") as file:
        file.write("# an edit\n")
    assert load_reference(directory).version != ref.version


GROUP_ENTITIES = {
    "Jasmin Holding SA": "LU",
    "Docler Services S.à r.l.": "LU",
    "Docler IP S.à r.l.": "LU",
    "Jasmin SSC Kft": "HU",
    "Jasmin IP S.à r.l. Hungarian branch": "HU",
    "Docler Services Kft": "HU",
    "Docler LA LLC": "US",
    "Escalion S.à r.l.": "LU",
    "Duodecad IT Services S.à r.l.": "LU",
}


def test_the_nine_group_entities_of_section_6_3_with_their_countries(ref: ReferenceData) -> None:
    group = {r.legal_name: r for r in ref.recipients if r.role is Role.group_entity}
    assert {name: r.country for name, r in group.items()} == GROUP_ENTITIES
    for entry in group.values():
        assert entry.kind == "organisation"
        assert entry.address
        assert entry.valid_to is None
    assert group["Docler LA LLC"].address == "10811 Washington Blvd, Culver City, CA 90232"
    assert group["Jasmin SSC Kft"].address == "Expo tér 5-7, H-1101 Budapest"


def test_joint_controllers(ref: ReferenceData) -> None:
    controllers = {r.legal_name: r for r in ref.recipients if r.role is Role.joint_controller}
    assert set(controllers) == {"JWS Americas S.à r.l.", "JWS International S.à r.l."}
    assert {r.country for r in controllers.values()} == {"LU"}


def test_docler_la_is_outside_the_eea_with_standard_contractual_clauses(
    ref: ReferenceData,
) -> None:
    (docler_la,) = [r for r in ref.recipients if r.legal_name == "Docler LA LLC"]
    assert docler_la.eea is False
    assert docler_la.safeguard is Safeguard.standard_contractual_clauses
    result = classify(
        ref,
        recipient_id=docler_la.id,
        recipient_category="group_entity",
        data_categories=["user.account.username"],
        purpose="essential.service.operations",
        occurred_at_ms=NOW,
    )
    assert result.flags == ()
    assert result.recipient_eea is False


def test_named_processors_and_escalion(ref: ReferenceData) -> None:
    by_id = {r.id: r for r in ref.recipients}
    for rid, country in [("hotjar", "MT"), ("google-analytics", "IE"), ("emarsys", "AT")]:
        assert by_id[rid].role is Role.processor
        assert by_id[rid].category == "service_provider"
        assert by_id[rid].country == country
    assert by_id["escalion"].category == "payment_provider"
    assert by_id["escalion"].role is Role.group_entity


def test_classes_of_recipients_the_policy_does_not_name(ref: ReferenceData) -> None:
    classes = {r.id: r.category.value for r in ref.recipients if r.kind == "class"}
    assert (
        classes.items()
        >= {
            "broadcasters": "broadcaster",
            "other-members": "public",
            "processing-banks": "financial_institution",
            "debt-collectors": "financial_institution",
            "law-enforcement-agencies": "authority",
            "auditors": "service_provider",
            "anti-fraud-providers": "service_provider",
            "marketing-partners": "service_provider",
            "customer-service-providers": "service_provider",
        }.items()
    )


def test_ccpa_category_names_are_a_to_l() -> None:
    assert list(CCPA_CATEGORY_NAMES) == list("ABCDEFGHIJKL")
    assert CCPA_CATEGORY_NAMES["L"] == "Sensitive personal information"


def test_category_facts_from_the_policy(ref: ReferenceData) -> None:
    assert ref.ccpa_letters("user.contact.email") == {"A"}
    assert ref.ccpa_letters("user.behavior.purchase_history") == {"D"}
    assert "G" in ref.ccpa_letters("user.location.precise")
    assert ref.is_sensitive("user.location.precise")
    assert ref.is_sensitive("user.demographic.religious_belief")
    assert ref.category_mapping("user.demographic.religious_belief").gdpr_special_category
    assert not ref.is_sensitive("user.contact.email")


def test_the_broadcaster_category_bought_from_is_sensitive(ref: ReferenceData) -> None:
    mapping = ref.category_mapping(BROADCASTER_CATEGORY)
    assert mapping.platform_key
    assert mapping.sensitive == "religious_philosophical_beliefs"
    assert mapping.gdpr_special_category
    assert {"D", "L"} <= set(mapping.ccpa_letters)


def test_every_listed_key_is_a_fides_key_or_a_platform_key_under_one(ref: ReferenceData) -> None:
    fides = {c.fides_key for c in DEFAULT_TAXONOMY.data_category}
    uses = {u.fides_key for u in DEFAULT_TAXONOMY.data_use}
    for entry in ref.categories:
        if entry.parent is None:
            assert entry.key in fides
        else:
            assert entry.key not in fides
            assert entry.parent in fides
    assert {p.key for p in ref.purposes} <= uses


def test_sub_keys_inherit_unless_they_override(ref: ReferenceData) -> None:
    # Not listed: inherits from the nearest listed ancestor.
    assert ref.ccpa_letters("user.device.cookie") == {"A", "F"}
    assert ref.category_mapping("user.device.cookie").letters_from == "user.device"
    assert ref.ccpa_letters("user.contact.address.postal_code") == {"A", "B"}
    assert ref.ccpa_letters("user.location.imprecise") == {"G"}
    assert not ref.is_sensitive("user.location.imprecise")
    assert ref.ccpa_letters("user.government_id.passport_number") == {"A", "B", "L"}
    assert ref.is_sensitive("user.government_id.passport_number")
    # Listed: overrides.
    assert ref.ccpa_letters("user.device.ip_address") == {"A"}
    assert ref.ccpa_letters("user.device") == {"A", "F"}


def test_unknown_keys_are_violations(ref: ReferenceData) -> None:
    with pytest.raises(ReferenceViolation) as info:
        ref.ccpa_letters("user.health_and_medical")  # a Fides key no listed key covers
    assert info.value.reference_file == "categories.yaml"
    with pytest.raises(ReferenceViolation) as info:
        ref.purpose("employment.recruitment")
    assert info.value.reference_file == "purposes.yaml"


def test_purposes_map_to_business_purposes(ref: ReferenceData) -> None:
    assert ref.purpose("essential.service.payment_processing").business_purpose == "5"
    assert ref.purpose("essential.fraud_detection").business_purpose == "2"
    assert ref.purpose("marketing.communications.email").business_purpose == "6"
    assert ref.purpose("analytics.reporting").legal_basis == "consent"
    assert {p.business_purpose for p in ref.purposes} <= {*"12345678", "sale", "share"}


SECTION_8_2 = {
    # flow id: (recipient category, recipient ids, CCPA letters of the declared keys)
    "ccpa-8.2-analytics": ("service_provider", ("hotjar", "google-analytics"), {"A", "F"}),
    "ccpa-8.2-payment": ("payment_provider", ("escalion", "other-payment-processors"), {"B", "D"}),
    "ccpa-8.2-marketing": (
        "service_provider",
        ("emarsys", "marketing-partners"),
        {"A", "B", "D", "F"},
    ),
    "ccpa-8.2-anti-fraud": ("service_provider", ("anti-fraud-providers",), {"A", "B", "D", "F"}),
    "ccpa-8.2-auditing": ("service_provider", ("auditors",), {"A", "B", "D", "F"}),
}


def test_section_8_2_is_declared(ref: ReferenceData) -> None:
    flows = {f.id: f for f in ref.flows if f.policy_section == "8.2"}
    assert set(flows) == set(SECTION_8_2)
    for flow_id, (category, ids, letters) in SECTION_8_2.items():
        flow = flows[flow_id]
        assert flow.recipient_category == category
        assert flow.recipient_ids == ids
        assert {x for k in flow.data_categories for x in ref.ccpa_letters(k)} == letters
    usage = {"user.device", "user.behavior.browsing_history"}
    assert usage <= set(flows["ccpa-8.2-analytics"].data_categories)
    marketing = set(flows["ccpa-8.2-marketing"].data_categories)
    assert "user.behavior.email_interaction" in marketing
    assert not any(k.startswith(("user.financial", "user.payment")) for k in marketing)


def test_every_flow_cites_the_policy(ref: ReferenceData) -> None:
    for flow in ref.flows:
        assert re.match(r"^\d", flow.policy_section), flow.id
    sections = {s.strip() for f in ref.flows for s in f.policy_section.split(",")}
    assert {"6.1", "6.2", "6.3", "6.4", "6.5.2", "6.5.3", "6.6", "6.7", "8.2"} <= sections


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("path", FAILING_CASES, ids=[p.stem for p in FAILING_CASES])
def test_each_failing_reference_set_reports_its_problem(path: Path, tmp_path: Path) -> None:
    case = load_case(path)
    directory = copy_reference(tmp_path)
    apply_case(directory, case)
    problems = check_reference(directory)
    assert len(problems) == 1, problems
    assert case["problem"] in problems[0]
    assert problems[0].startswith(case["file"])
    with pytest.raises(ReferenceDataError, match=re.escape(case["problem"])):
        load_reference(directory)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    cases = [load_case(p) for p in FAILING_CASES]
    appended = [c for c in cases if "append" in c]
    assert len(appended) >= 10
    directory = copy_reference(tmp_path)
    for case in appended:
        apply_case(directory, case)
    problems = check_reference(directory)
    for case in appended:
        assert any(case["problem"] in p for p in problems), case["problem"]
    with pytest.raises(ReferenceDataError) as info:
        load_reference(directory)
    assert f"({len(problems)} problems;" in str(info.value)


def test_missing_directory_and_file(tmp_path: Path) -> None:
    assert check_reference(tmp_path / "nowhere") == [
        f"{tmp_path / 'nowhere'}: not a directory of reference data"
    ]
    directory = copy_reference(tmp_path)
    (directory / "flows.yaml").unlink()
    assert check_reference(directory) == [f"flows.yaml: file not found in {directory}"]


# --------------------------------------------------------------------------- classify


def test_declared_flow_classification(ref: ReferenceData) -> None:
    result = classify(
        ref,
        recipient_id="hotjar",
        recipient_category="service_provider",
        data_categories=["user.device.ip_address", "user.behavior.browsing_history"],
        purpose="analytics.reporting",
        occurred_at_ms=NOW,
    )
    assert result == Classification(
        recipient_registered=True,
        recipient_role=Role.processor,
        recipient_country="MT",
        recipient_eea=True,
        safeguard=None,
        declared=True,
        flow_id="ccpa-8.2-analytics",
        flags=(),
        ccpa_letters=("A", "F"),
        sensitive=False,
        gdpr_special_category=False,
        business_purpose="5",
    )


def test_unregistered_broadcasters_public_and_authorities_are_accepted(ref: ReferenceData) -> None:
    broadcaster = classify(
        ref,
        recipient_id="broadcaster-00042",
        recipient_category="broadcaster",
        data_categories=["user.account.username", BROADCASTER_CATEGORY],
        purpose="essential.service",
        occurred_at_ms=NOW,
    )
    assert broadcaster.declared
    assert not broadcaster.recipient_registered
    assert broadcaster.recipient_role is Role.third_party
    assert broadcaster.sensitive
    assert broadcaster.ccpa_letters == ("A", "D", "L")
    authority = classify(
        ref,
        recipient_id="police-luxembourg",
        recipient_category="authority",
        data_categories=["user.name"],
        purpose="third_party_sharing.legal_obligation",
        occurred_at_ms=NOW,
    )
    assert authority.declared
    assert authority.recipient_country is None


def test_unknown_data_category_names_key_and_file(ref: ReferenceData) -> None:
    with pytest.raises(ReferenceViolation) as info:
        classify(
            ref,
            recipient_id="hotjar",
            recipient_category="service_provider",
            data_categories=["user.device.ip_address", "user.device.shoe_size"],
            purpose="analytics.reporting",
            occurred_at_ms=NOW,
        )
    assert info.value.key == "user.device.shoe_size"
    assert info.value.reference_file == "categories.yaml"
    assert "'user.device.shoe_size'" in str(info.value)
    assert "categories.yaml" in str(info.value)


def test_unknown_purpose_names_key_and_file(ref: ReferenceData) -> None:
    with pytest.raises(ReferenceViolation) as info:
        classify(
            ref,
            recipient_id="hotjar",
            recipient_category="service_provider",
            data_categories=["user.device.ip_address"],
            purpose="train_ai_system",
            occurred_at_ms=NOW,
        )
    assert (info.value.key, info.value.reference_file) == ("train_ai_system", "purposes.yaml")
    assert "'train_ai_system'" in str(info.value)
    assert "purposes.yaml" in str(info.value)


def test_registered_recipient_with_another_category_names_key_and_file(
    ref: ReferenceData,
) -> None:
    with pytest.raises(ReferenceViolation) as info:
        classify(
            ref,
            recipient_id="escalion",
            recipient_category="group_entity",
            data_categories=["user.payment"],
            purpose="essential.service.operations",
            occurred_at_ms=NOW,
        )
    assert (info.value.key, info.value.reference_file) == ("escalion", "recipients.yaml")
    message = str(info.value)
    assert "'escalion'" in message
    assert "'payment_provider'" in message
    assert "recipients.yaml" in message


@pytest.mark.parametrize(
    "category", ["service_provider", "payment_provider", "financial_institution", "group_entity"]
)
def test_unregistered_recipient_where_registration_is_required_is_classified_and_flagged(
    ref: ReferenceData, category: str
) -> None:
    # the disclosure happened: it is classified by the event's category, and flagged
    result = classify(
        ref,
        recipient_id="acme-data-brokers",
        recipient_category=category,
        data_categories=["user.contact.email"],
        purpose="essential.service.operations",
        occurred_at_ms=NOW,
    )
    assert result.flags[0] == "unregistered_recipient"
    assert not result.recipient_registered and result.recipient_role == Role.third_party
    assert result.ccpa_letters == tuple(sorted(ref.ccpa_letters("user.contact.email")))
    problem = ref.unregistered_recipient(
        "acme-data-brokers", category, datetime.fromtimestamp(NOW / 1000, UTC)
    )
    assert problem is not None
    assert "'acme-data-brokers'" in problem and "add it to recipients.yaml" in problem


def test_registered_recipient_outside_its_validity_is_flagged_unregistered(
    ref: ReferenceData,
) -> None:
    before = ms("2021-07-21T23:59:59.999+00:00")
    result = classify(
        ref,
        recipient_id="hotjar",
        recipient_category="service_provider",
        data_categories=["user.device.ip_address"],
        purpose="analytics.reporting",
        occurred_at_ms=before,
    )
    assert "unregistered_recipient" in result.flags and not result.recipient_registered
    problem = ref.unregistered_recipient(
        "hotjar",
        "service_provider",
        datetime(2021, 7, 21, 23, 59, 59, 999000, tzinfo=UTC),
        registry_file="/srv/ref/recipients.yaml",
    )
    assert problem is not None
    assert "no registry entry valid at 2021-07-21T23:59:59.999" in problem
    assert "[2021-07-22, open)" in problem and "/srv/ref/recipients.yaml" in problem
    assert (
        ref.unregistered_recipient("hotjar", "service_provider", datetime(2026, 1, 1, tzinfo=UTC))
        is None
    )
    assert (
        ref.unregistered_recipient("broadcaster-1", "broadcaster", datetime(2026, 1, 1, tzinfo=UTC))
        is None
    )


def test_role_change_classifies_by_the_entry_valid_at_the_time(ref: ReferenceData) -> None:
    periods = [r for r in ref.recipients if r.id == "survey-provider"]
    assert len(periods) == 2
    assert {r.role for r in periods} == {Role.processor, Role.third_party}

    def at(when: str) -> Classification:
        return classify(
            ref,
            recipient_id="survey-provider",
            recipient_category="service_provider",
            data_categories=["user.contact.email"],
            purpose="functional.service.improve",
            occurred_at_ms=ms(when),
        )

    before = at("2026-06-30T23:59:59.999+00:00")
    after = at("2026-07-01T00:00:00+00:00")  # valid_to is exclusive
    assert before.recipient_role is Role.processor
    assert before.safeguard is Safeguard.standard_contractual_clauses
    assert before.flags == ()
    assert after.recipient_role is Role.third_party
    assert after.safeguard is Safeguard.none
    assert after.flags == ("transfer_without_safeguard",)
    assert before.declared and after.declared
    assert ref.recipient_at("survey-provider", ms("2026-07-01T00:00:00+00:00")) == periods[1]


def test_undeclared_flow_is_accepted_and_flagged(ref: ReferenceData) -> None:
    result = classify(
        ref,
        recipient_id="hotjar",
        recipient_category="service_provider",
        data_categories=["user.contact.email"],
        purpose="marketing.communications.email",
        occurred_at_ms=NOW,
    )
    assert not result.declared
    assert result.flow_id is None
    assert result.flags == ("undeclared_flow",)
    assert result.business_purpose == "6"


def test_sensitive_sub_key_is_not_declared_through_its_parent(ref: ReferenceData) -> None:
    def to_emarsys(keys: list[str]) -> Classification:
        return classify(
            ref,
            recipient_id="emarsys",
            recipient_category="service_provider",
            data_categories=keys,
            purpose="marketing.communications.email",
            occurred_at_ms=NOW,
        )

    assert to_emarsys(["user.behavior.purchase_history"]).declared
    assert not to_emarsys([BROADCASTER_CATEGORY]).declared
    # A non-sensitive sub-key is covered by its declared parent.
    assert to_emarsys(["user.contact.address.postal_code"]).declared


def test_classify_is_memoised_across_sequence_types(ref: ReferenceData) -> None:
    arguments: dict[str, Any] = {
        "recipient_id": "emarsys",
        "recipient_category": "service_provider",
        "purpose": "marketing.communications.email",
        "occurred_at_ms": NOW,
    }
    first = classify(ref, data_categories=["user.contact.email"], **arguments)
    again = classify(ref, data_categories=("user.contact.email",), **arguments)
    assert again is first


def test_classify_event(ref: ReferenceData) -> None:
    event = DisclosureEvent.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "occurred_at": "2026-03-01T12:00:00Z",
            "subject": {"id": "member-1", "type": "member"},
            "recipient": {"id": "escalion", "category": "payment_provider"},
            "data_categories": ["user.payment", "user.financial.credit_card"],
            "purpose": "essential.service.payment_processing",
            "legal_basis": "contract",
            "producer": {"service": "billing", "version": "1"},
        }
    )
    result = classify_event(ref, event)
    assert result.flow_id == "ccpa-8.2-payment"
    assert result.ccpa_letters == ("B", "D")


# --------------------------------------------------------------------------- export


def test_expected_sources_are_the_services_the_simulator_runs_with_their_flows(
    ref: ReferenceData,
) -> None:
    from disclosure_ledger.simulate import PRODUCERS

    assert {s.source for s in ref.sources} == set(PRODUCERS)
    flows = {flow.id for flow in ref.flows}
    for source in ref.sources:
        assert set(source.flows) <= flows
    table = ref.to_arrow_tables()["ref_sources"]
    assert table.column_names == ["reference_version", "source", "flows"]
    rows = {r["source"]: r["flows"] for r in table.to_pylist()}
    assert "chargebacks" in rows["billing"] and "group-entities" in rows["fraud"]


def test_arrow_tables(ref: ReferenceData) -> None:
    tables = ref.to_arrow_tables()
    assert set(tables) == {
        "ref_recipients",
        "ref_categories",
        "ref_purposes",
        "ref_flows",
        "ref_sources",
    }
    for table in tables.values():
        assert table.num_rows > 0
        assert set(table.column("reference_version").to_pylist()) == {ref.version}
    recipients = tables["ref_recipients"].to_pylist()
    assert len(recipients) == len(ref.recipients)
    docler_la = next(r for r in recipients if r["recipient_id"] == "docler-la")
    assert docler_la["safeguard"] == "standard_contractual_clauses"
    assert docler_la["valid_from"] == datetime(2021, 7, 22, tzinfo=UTC)
    categories = tables["ref_categories"].to_pylist()
    letters = {(r["data_category"], r["ccpa_letter"]) for r in categories}
    assert ("user.contact.email", "A") in letters
    assert ("user.location.precise", "G") in letters
    assert ("user.location.precise", "L") in letters
    assert len(letters) == len(categories)  # one row per key and letter
    precise = [r for r in categories if r["data_category"] == "user.location.precise"]
    assert {r["sensitive_kind"] for r in precise} == {"precise_geolocation"}
    flows = tables["ref_flows"].to_pylist()
    assert {
        "flow_id": "ccpa-8.2-analytics",
        "policy_section": "8.2",
        "recipient_category": "service_provider",
        "recipient_id": "hotjar",
        "data_category": "user.device",
        "purpose": "analytics.reporting",
        "legal_basis": "consent",
        "reference_version": ref.version,
    } in flows


@pytest.mark.parametrize("section", ["recipients", "categories", "purposes", "flows"])
def test_format_reference(ref: ReferenceData, section: str) -> None:
    text = format_reference(ref, section)
    lines = text.splitlines()
    assert set(lines[1]) == {"-", " "}
    assert len(lines) > 3
    expected = {
        "recipients": "Docler LA LLC",
        "categories": "user.location.precise",
        "purposes": "essential.fraud_detection",
        "flows": "ccpa-8.2-marketing",
    }[section]
    assert expected in text


def test_format_reference_unknown_section(ref: ReferenceData) -> None:
    with pytest.raises(ReferenceDataError, match="choose one of recipients, categories"):
        format_reference(ref, "everything")
