"""The policy timeline of the sample partnership: instruments, their life events and who adopted when.

This table is the single source for both the policy files (`policies/*.yaml`) and the planted effects
(`effects.py`): a country's adoption year here is the year from which its data carries the effect.
Member adoptions (`ADOPTED_BY_MEMBER`) are effective on 1 January of the adoption year, one event per
country, and the effect applies to every period of that year and after.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Event:
    action: str            # policy_update PolicyAction symbol
    version: str
    effective_date: date
    member_countries: tuple[str, ...] = ()


@dataclass(frozen=True)
class Instrument:
    instrument_id: str
    publisher: str         # the org whose policies file carries it (the `--org` it is published under)
    issuing_org: str
    title: str
    instrument_type: str   # policy_update InstrumentType symbol
    binding: bool
    themes: tuple[str, ...]
    related_indicators: tuple[str, ...]
    url: str
    events: tuple[Event, ...]                          # the instrument's own life (adopted, revised, ...)
    adoptions: dict[str, int] = field(default_factory=dict)   # alpha-3 -> adoption year (member adoptions)
    partner_orgs: tuple[str, ...] = ()

    def version_at(self, when: date) -> str:
        """The version in force at `when` (the latest own event on or before it)."""
        current = self.events[0].version
        for ev in self.events:
            if ev.effective_date <= when:
                current = ev.version
        return current

    def all_events(self) -> list[Event]:
        """Own events and one ADOPTED_BY_MEMBER event per adopting country, in date order."""
        members = [Event("ADOPTED_BY_MEMBER", self.version_at(date(y, 1, 1)), date(y, 1, 1), (c,))
                   for c, y in self.adoptions.items()]
        return sorted([*self.events, *members], key=lambda e: (e.effective_date, e.action, e.member_countries))


def _years(**by_year: tuple[str, ...]) -> dict[str, int]:
    return {c: int(y.removeprefix("y")) for y, cs in by_year.items() for c in cs}


INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument(
        instrument_id="WCO-FOS-ECOM", publisher="WCO", issuing_org="WCO",
        title="WCO Framework of Standards on Cross-Border E-Commerce",
        instrument_type="FRAMEWORK", binding=False,
        themes=("e-commerce", "trade-facilitation", "postal"),
        related_indicators=("WCO.ECOM_CLEARANCE_HOURS", "UPU.POSTAL_ECOM_ITEMS"),
        url="https://www.wcoomd.org/en/topics/facilitation/instrument-and-tools/frameworks-of-standards/ecommerce.aspx",
        events=(Event("ADOPTED", "2018", date(2018, 6, 30)), Event("REVISED", "2022", date(2022, 6, 25))),
        adoptions=_years(y2019=("SGP", "KOR", "NLD", "CHN"), y2020=("AUS", "FRA", "JPN", "MAR"),
                         y2021=("MEX", "THA", "EGY"), y2022=("BRA", "IND", "KEN"), y2023=("SAU", "VNM")),
    ),
    Instrument(
        instrument_id="WCO-BASEL-HAZWASTE", publisher="WCO", issuing_org="WCO",
        title="WCO guidance on the border enforcement of the Basel Convention (hazardous and e-waste)",
        instrument_type="GUIDELINE", binding=False,
        themes=("environment", "security"),
        related_indicators=("WCO.HAZWASTE_SEIZURES",),
        url="https://www.wcoomd.org/en/topics/enforcement-and-compliance/activities-and-programmes/environment-programme.aspx",
        events=(Event("ADOPTED", "1.0", date(2018, 11, 30)),),
        adoptions=_years(y2019=("NLD", "DEU", "GHA"), y2020=("NGA", "IDN", "THA"),
                         y2021=("VNM", "PHL", "MEX"), y2022=("EGY", "TUR", "ITA")),
    ),
    Instrument(
        instrument_id="WCO-WHO-CRITMED-LIST", publisher="WCO", issuing_org="WCO", partner_orgs=("WHO",),
        title="WCO-WHO joint list of critical medicines and vaccines (HS classification reference)",
        instrument_type="LIST", binding=False,
        themes=("health-and-vaccines", "trade-facilitation"),
        related_indicators=("WHO.MEDICINE_SHIPMENTS_USD", "WHO.VACCINE_SHIPMENTS_DOSES"),
        url="https://www.wcoomd.org/en/topics/nomenclature/resources/hs-classification-reference-for-covid-19-medical-supplies.aspx",
        events=(Event("ADOPTED", "1", date(2020, 4, 3)), Event("REVISED", "2", date(2020, 12, 18)),
                Event("REVISED", "3", date(2021, 9, 10))),
    ),
    Instrument(
        instrument_id="WHO-JS-VACCINE-FLOWS", publisher="WHO", issuing_org="WHO", partner_orgs=("WCO", "ICAO"),
        title="Joint statement on keeping cross-border flows of vaccines and critical medicines open",
        instrument_type="JOINT_STATEMENT", binding=False,
        themes=("health-and-vaccines", "transport"),
        related_indicators=("WHO.VACCINE_SHIPMENTS_DOSES", "ICAO.AIR_CARGO_VACCINES"),
        url="https://www.who.int/news/joint-statement-vaccine-flows",
        events=(Event("ADOPTED", "1", date(2021, 3, 15)),),
    ),
    Instrument(
        instrument_id="ICAO-VACCINE-AIRCARGO", publisher="ICAO", issuing_org="ICAO",
        title="ICAO guidelines on the air transport of vaccines as cargo",
        instrument_type="GUIDELINE", binding=False,
        themes=("health-and-vaccines", "transport"),
        related_indicators=("ICAO.AIR_CARGO_VACCINES",),
        url="https://www.icao.int/safety/CAPSCA/Pages/Vaccines-air-cargo.aspx",
        events=(Event("ADOPTED", "1", date(2020, 12, 1)), Event("REVISED", "2", date(2021, 6, 15))),
        adoptions=_years(y2021=("DEU", "USA", "IND", "SGP", "ZAF"), y2022=("BRA", "KEN", "GHA", "TUR"),
                         y2023=("IDN", "PHL", "CHL")),
    ),
    Instrument(
        instrument_id="UPU-EAD-REG", publisher="UPU", issuing_org="UPU",
        title="UPU Convention regulations on electronic advance data (EAD) for postal items",
        instrument_type="RESOLUTION", binding=True,
        themes=("postal", "e-commerce", "security"),
        related_indicators=("UPU.POSTAL_ECOM_ITEMS",),
        url="https://www.upu.int/en/postal-solutions/programmes-services/electronic-advance-data",
        events=(Event("ADOPTED", "2016", date(2016, 10, 6)), Event("ENTERED_INTO_FORCE", "2016", date(2021, 1, 1))),
    ),
    Instrument(
        instrument_id="IMO-FAL-2016-AMEND", publisher="IMO", issuing_org="IMO",
        title="Amendments to the FAL Convention: mandatory electronic exchange of information (maritime single window)",
        instrument_type="CONVENTION", binding=True,
        themes=("transport", "trade-facilitation"),
        related_indicators=("IMO.PORT_CALLS",),
        url="https://www.imo.org/en/OurWork/Facilitation/Pages/FALConvention-Default.aspx",
        events=(Event("ADOPTED", "2016", date(2016, 4, 8)), Event("ENTERED_INTO_FORCE", "2016", date(2019, 4, 8))),
        adoptions=_years(y2019=("NLD", "SGP", "KOR", "JPN"), y2020=("ESP", "FRA", "ITA", "GBR"),
                         y2021=("AUS", "CAN", "USA"), y2022=("BRA", "MAR", "SAU"), y2023=("ZAF",)),
    ),
)

BY_ID = {i.instrument_id: i for i in INSTRUMENTS}


def policy_records(instrument: Instrument) -> list[dict]:
    """The instrument's updates as policy_update fields (without the producer-computed event_id, org, produced_at)."""
    return [{
        "instrument_id": instrument.instrument_id,
        "issuing_org": instrument.issuing_org,
        "partner_orgs": list(instrument.partner_orgs),
        "title": instrument.title,
        "instrument_type": instrument.instrument_type,
        "binding": instrument.binding,
        "action": ev.action,
        "version": ev.version,
        "effective_date": ev.effective_date.isoformat(),
        "member_countries": list(ev.member_countries),
        "themes": list(instrument.themes),
        "related_indicators": list(instrument.related_indicators),
        "url": instrument.url,
    } for ev in instrument.all_events()]
