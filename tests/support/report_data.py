"""Known datasets for the annual analysis: a small year with its edge cases on purpose."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from flows.taxonomy import default_taxonomy
from storage.report import Period
from storage.transfer import COLUMNS, Vocabulary

LONDON = ZoneInfo("Europe/London")
YEAR = Period(date(2022, 9, 1), date(2023, 8, 31), LONDON)
TAX = default_taxonomy()
CATEGORIES = TAX["category"].labels
VOCAB = Vocabulary.of_taxonomy(TAX)
HEADER = ",".join(COLUMNS)
# Edge cases on purpose: the first and last day around midnight London time (BST in
# summer, so 00:30 London is 23:30 UTC the day before), several categories per case,
# blanks that must not be counted, and one case outside the period on each side.
DATASET = "\n".join(
    [
        HEADER,
        "R01,2022-09-01T00:30:00+01:00,email,Teacher,Secondary,London,Social Networks,TikTok,Online Reputation;Cyberbullying,RE: TikTok account removal,,true,Referred to platform for takedown,resolved",
        "R02,2022-08-31T23:59:00+01:00,email,Teacher,Secondary,London,Social Networks,TikTok,Online Reputation,TikTok before the period,,true,,resolved",
        "R03,2022-09-15T12:00:00,email,DSL,Primary,Wales,Social Networks,Instagram,Cyberbullying;Hate Speech,Fake Instagram account,,false,Advice given,resolved",
        "R04,2023-03-10T09:00:00,phone,Teacher,Secondary,South East,Websites,,Potentially Harmful Content,Tiktok video,,true,,resolved",
        "R05,2023-03-11T09:00:00,email,Parent,,,,,General Enquiry,Fw: the school's policy,,,,signposted",
        "R06,2023-08-31T23:30:00+01:00,email,Head Teacher,Primary,North East,Social Networks,TikTok,Online Reputation,TikTok account,,false,,new",
        "R07,2023-09-01T00:00:00+01:00,email,Teacher,Secondary,London,Social Networks,TikTok,Online Reputation,After the period,,true,,resolved",
    ]
)
