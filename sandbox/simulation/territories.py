"""The company's sales territories: where its visitors, accounts and reps are."""

from __future__ import annotations

TERRITORIES = {
    # share of people, rough UTC offset of its visitors' daytime, countries (weight, TLD, legal form)
    "AMER": (
        0.55,
        -5,
        {
            "US": (80, "com", "Inc."),
            "CA": (12, "ca", "Inc."),
            "BR": (5, "com.br", "Ltda."),
            "MX": (3, "mx", "S.A. de C.V."),
        },
    ),
    "EMEA": (
        0.35,
        1,
        {
            "GB": (30, "co.uk", "Ltd"),
            "DE": (25, "de", "GmbH"),
            "FR": (15, "fr", "SAS"),
            "NL": (10, "nl", "B.V."),
            "ES": (8, "es", "S.L."),
            "SE": (7, "se", "AB"),
            "IE": (5, "ie", "Ltd"),
        },
    ),
    "APAC": (
        0.10,
        9,
        {
            "AU": (50, "com.au", "Pty Ltd"),
            "SG": (20, "sg", "Pte Ltd"),
            "JP": (15, "jp", "K.K."),
            "IN": (15, "in", "Pvt Ltd"),
        },
    ),
}
