"""Statutory tables: CCPA category letters, EEA member states, ISO 3166-1 country codes.

The only business facts written in code; everything the privacy policy decides lives in
the data files (see :mod:`reference.loading`).
"""

from __future__ import annotations

from typing import Final

__all__ = ["BUSINESS_PURPOSES", "CCPA_CATEGORY_NAMES", "EEA_COUNTRIES", "ISO_COUNTRIES"]

CCPA_CATEGORY_NAMES: Final[dict[str, str]] = {
    "A": "Identifiers",
    "B": "Personal information described in Cal. Civ. Code 1798.80(e)",
    "C": "Characteristics of protected classifications under California or federal law",
    "D": "Commercial information",
    "E": "Biometric information",
    "F": "Internet or other electronic network activity information",
    "G": "Geolocation data",
    "H": "Audio, electronic, visual, thermal, olfactory or similar information",
    "I": "Professional or employment-related information",
    "J": "Non-public education information",
    "K": "Inferences drawn from personal information to create a profile",
    "L": "Sensitive personal information",
}


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# EU member states plus Iceland, Liechtenstein and Norway.
EEA_COUNTRIES: Final[frozenset[str]] = _codes(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO"
)

# ISO 3166-1 alpha-2 officially assigned codes.
ISO_COUNTRIES: Final[frozenset[str]] = _codes(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN
    BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE
    DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN
    GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE
    KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
    ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA
    PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK
    SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG
    UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"""
)


# CCPA 1798.140(e) business purposes 1 to 8, and the two ways of selling or sharing.
BUSINESS_PURPOSES: Final[tuple[str, ...]] = (*"12345678", "sale", "share")
