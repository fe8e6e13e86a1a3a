"""A second tool set, unlike retail: a clinic's front desk, and its demonstrations.

Seven deterministic tools over an in-memory database (patients, doctors,
appointments). Like τ-bench tools they take keyword arguments, return JSON text
and raise ``ValueError("Error: ...")`` on a bad call. New records get the next
number of their counter, from a fresh database: the first booking is
``APT-60001``, the first refund ``RF-70001``, the first e-mail ``MSG-80001``.

The demonstrations (:func:`demonstrations`) are written by hand (task text and the
calls a careful agent made); their outputs come from running these tools, in
order, on one database. They include a param used by two steps (the patient's
e-mail looks the patient up, then receives a message), values taken from an
earlier step's output (patient id, appointment id), free text (reasons), e-mail
addresses, dates, amounts, prefixed ids and a postal address.
:func:`reserved_demonstrations` adds demonstrations whose args carry objects with
a reserved key (``$step``, ``$param``, ``$ask``) as plain data: the mail-merge
fields of the e-mail service, which must be sent back byte-identical. Each of
those three procedures has its own action sequence, so that none is merged with
another when traces are grouped by actions.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from procmem import Trace, TraceStep

__all__ = ["SIGNATURES", "ClinicDesk", "demonstrations", "reserved_demonstrations"]

SIGNATURES: dict[str, list[tuple[str, bool]]] = {
    "find_patient": [("email", True)],
    "book_appointment": [("patient_id", True), ("doctor_id", True), ("date", True),
                         ("reason", True)],
    "cancel_appointment": [("appointment_id", True), ("reason", True)],
    "confirm_appointment": [("appointment_id", True)],
    "refund_copay": [("appointment_id", True), ("amount", True), ("reason", True)],
    "update_address": [("patient_id", True), ("address", True)],
    "send_email": [("to", True), ("template", True), ("appointment_id", False),
                   ("merge", False)],
}
"""Each tool's keyword parameters as ``(name, required)``."""

_PATIENTS = [
    ("PT-1001", "Lena Fischer", "lena.fischer@example.org", "4929 1024 5566 7781"),
    ("PT-1002", "Omar Haddad", "omar.haddad@example.org", "5312 8871 0042 1190"),
    ("PT-1003", "Mei Tanaka", "mei.tanaka@example.org", "4716 3340 9981 2207"),
    ("PT-1004", "Raj Patel", "raj.patel@example.org", "4539 7710 2268 4401"),
    ("PT-1005", "Zoe O'Neil", "zoe.oneil+clinic@mail.health-example.co.uk",
     "4024 0071 8832 5561"),
    ("PT-1006", "Sam Lee", "Sam.Lee@Example.COM", "5105 1051 0510 5100"),
    ("PT-1007", "Anna Kowalska", "anna_k-99@clinic.example", "4111 1111 1111 1111"),
    ("PT-1008", "Jo Wu", "jo@wu.io", "4000 0566 5566 5556"),
    ("PT-1009", "Ines Duarte", "ines.duarte@example.org", "5555 5555 5555 4444"),
]
_DOCTORS = ("DR-204", "DR-311", "DR-118", "DR-2041", "DR-7")
_APPOINTMENTS = [
    # id, patient, doctor, date, copay
    ("APT-50871", "PT-1002", "DR-311", "2026-02-02", 35.5),
    ("APT-50872", "PT-1003", "DR-118", "2026-02-03", 20),
    ("APT-50873", "PT-1001", "DR-204", "2026-02-04", 12.75),
    ("APT-50874", "PT-1004", "DR-204", "2026-02-05", 40),
    ("APT-50875", "PT-1009", "DR-311", "2026-02-06", 40),
    ("APT-50876", "PT-1004", "DR-118", "2026-02-09", 1250),
    ("APT-50877", "PT-1005", "DR-204", "2026-02-10", 40),
    ("APT-50878", "PT-1006", "DR-311", "2026-02-11", 15.25),
    ("APT-1234567", "PT-1007", "DR-2041", "2026-02-12", 60),
    ("APT-9", "PT-1008", "DR-7", "2026-02-13", 7),
    ("APT-20260314", "PT-1009", "DR-118", "2026-03-14", 25),
]
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class ClinicDesk:
    """The clinic's database and its tools; a new object starts from the initial data."""

    def __init__(self) -> None:
        self.patients = {pid: {"patient_id": pid, "name": name, "email": email, "card": card,
                               "address": None}
                         for pid, name, email, card in _PATIENTS}
        self.appointments = {aid: {"appointment_id": aid, "patient_id": pid, "doctor_id": doc,
                                   "date": date, "copay": copay, "status": "scheduled"}
                             for aid, pid, doc, date, copay in _APPOINTMENTS}
        self.counters = {"APT": 60000, "RF": 70000, "MSG": 80000}

    def _next(self, prefix: str) -> str:
        self.counters[prefix] += 1
        return f"{prefix}-{self.counters[prefix]}"

    def _patient(self, patient_id: str) -> dict[str, Any]:
        if patient_id not in self.patients:
            raise ValueError("Error: patient not found")
        return self.patients[patient_id]

    def _appointment(self, appointment_id: str) -> dict[str, Any]:
        if appointment_id not in self.appointments:
            raise ValueError("Error: appointment not found")
        return self.appointments[appointment_id]

    def call(self, action: str, args: dict[str, Any]) -> str:
        """Run tool ``action`` with ``args``; returns JSON text, raises ``ValueError``."""
        return json.dumps(getattr(self, action)(**args))

    def find_patient(self, email: str) -> dict[str, Any]:
        for p in self.patients.values():
            if p["email"] == email:
                return dict(p)
        raise ValueError("Error: no patient with this email")

    def book_appointment(self, patient_id: str, doctor_id: str, date: str,
                         reason: str) -> dict[str, Any]:
        self._patient(patient_id)
        if doctor_id not in _DOCTORS:
            raise ValueError("Error: doctor not found")
        if not _DATE.fullmatch(date):
            raise ValueError("Error: date must be YYYY-MM-DD")
        aid = self._next("APT")
        self.appointments[aid] = {"appointment_id": aid, "patient_id": patient_id,
                                  "doctor_id": doctor_id, "date": date, "copay": 40,
                                  "status": "scheduled", "reason": reason}
        return dict(self.appointments[aid])

    def cancel_appointment(self, appointment_id: str, reason: str) -> dict[str, Any]:
        appt = self._appointment(appointment_id)
        if appt["status"] == "cancelled":
            raise ValueError("Error: appointment already cancelled")
        appt.update(status="cancelled", cancel_reason=reason)
        return dict(appt)

    def confirm_appointment(self, appointment_id: str) -> dict[str, Any]:
        appt = self._appointment(appointment_id)
        if appt["status"] != "scheduled":
            raise ValueError(f"Error: appointment is {appt['status']}")
        appt["status"] = "confirmed"
        return dict(appt)

    def refund_copay(self, appointment_id: str, amount: float, reason: str) -> dict[str, Any]:
        appt = self._appointment(appointment_id)
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise ValueError("Error: amount must be a number")
        if not 0 < amount <= appt["copay"]:
            raise ValueError("Error: amount exceeds the copay")
        return {"refund_id": self._next("RF"), "appointment_id": appointment_id,
                "amount": amount, "reason": reason, "status": "refunded"}

    def update_address(self, patient_id: str, address: str) -> dict[str, Any]:
        patient = self._patient(patient_id)
        patient["address"] = address
        return dict(patient)

    def send_email(self, to: str, template: str, appointment_id: str | None = None,
                   merge: Any = None) -> dict[str, Any]:
        if "@" not in to:
            raise ValueError("Error: invalid recipient")
        out: dict[str, Any] = {"message_id": self._next("MSG"), "to": to, "template": template}
        if appointment_id is not None:
            self._appointment(appointment_id)
            out["appointment_id"] = appointment_id
        if merge is not None:
            out["merge"] = merge
        return out


# A demonstration: (id, task, [(action, args)]); outputs come from running the tools.
_Demo = tuple[str, str, list[tuple[str, dict[str, Any]]]]


def _book(email: str, pid: str, doctor: str, date: str, reason: str, apt: str
          ) -> list[tuple[str, dict[str, Any]]]:
    return [("find_patient", {"email": email}),
            ("book_appointment", {"patient_id": pid, "doctor_id": doctor, "date": date,
                                  "reason": reason}),
            ("send_email", {"to": email, "template": "booking_confirmation",
                            "appointment_id": apt})]


def _move(email: str, pid: str, address: str) -> list[tuple[str, dict[str, Any]]]:
    return [("find_patient", {"email": email}),
            ("update_address", {"patient_id": pid, "address": address}),
            ("send_email", {"to": email, "template": "address_changed"})]


_DEMOS: list[_Demo] = [
    ("clinic-book-1", "Book an appointment for lena.fischer@example.org with DR-204 on "
     "2026-03-14, reason: knee pain follow-up.",
     _book("lena.fischer@example.org", "PT-1001", "DR-204", "2026-03-14",
           "knee pain follow-up", "APT-60001")),
    ("clinic-book-2", "Book an appointment for omar.haddad@example.org with DR-311 on "
     "2026-04-02, reason: annual check-up.",
     _book("omar.haddad@example.org", "PT-1002", "DR-311", "2026-04-02", "annual check-up",
           "APT-60002")),
    ("clinic-book-3", "Book an appointment for mei.tanaka@example.org with DR-118 on "
     "2026-05-20, reason: persistent cough and mild fever.",
     _book("mei.tanaka@example.org", "PT-1003", "DR-118", "2026-05-20",
           "persistent cough and mild fever", "APT-60003")),
    ("clinic-cancel-1", "Cancel appointment APT-50871, reason: patient is travelling.",
     [("cancel_appointment", {"appointment_id": "APT-50871", "reason": "patient is travelling"})]),
    ("clinic-cancel-2", "Cancel appointment APT-50872, reason: feeling better.",
     [("cancel_appointment", {"appointment_id": "APT-50872", "reason": "feeling better"})]),
    ("clinic-cancel-3", "Cancel appointment APT-50873, reason: the clinic asked to move it.",
     [("cancel_appointment", {"appointment_id": "APT-50873",
                              "reason": "the clinic asked to move it"})]),
    ("clinic-confirm-1", "Confirm appointment APT-50874.",
     [("confirm_appointment", {"appointment_id": "APT-50874"})]),
    ("clinic-confirm-2", "Confirm appointment APT-50875.",
     [("confirm_appointment", {"appointment_id": "APT-50875"})]),
    ("clinic-refund-1", "Refund $35.50 of the copay for appointment APT-50871, reason: "
     "charged twice.",
     [("refund_copay", {"appointment_id": "APT-50871", "amount": 35.5,
                        "reason": "charged twice"})]),
    ("clinic-refund-2", "Refund $20 of the copay for appointment APT-50872, reason: "
     "insurance covered the visit.",
     [("refund_copay", {"appointment_id": "APT-50872", "amount": 20,
                        "reason": "insurance covered the visit"})]),
    ("clinic-refund-3", "Refund $12.75 of the copay for appointment APT-50873, reason: "
     "wrong rate.",
     [("refund_copay", {"appointment_id": "APT-50873", "amount": 12.75,
                        "reason": "wrong rate"})]),
    ("clinic-move-1", "Update the address of omar.haddad@example.org to: 221 Baker Street, "
     "Boston MA.",
     _move("omar.haddad@example.org", "PT-1002", "221 Baker Street, Boston MA")),
    ("clinic-move-2", "Update the address of lena.fischer@example.org to: 9 Orchard Lane, "
     "Austin TX.",
     _move("lena.fischer@example.org", "PT-1001", "9 Orchard Lane, Austin TX")),
    ("clinic-move-3", "Update the address of mei.tanaka@example.org to: 48 River Road, "
     "Portland OR.",
     _move("mei.tanaka@example.org", "PT-1003", "48 River Road, Portland OR")),
]

CARD_FIELD = {"$step": "s1", "path": "/card"}
"""A mail-merge field of the e-mail service: "the card on file", filled by the service."""
NAME_FIELD = {"$param": "first_name"}
"""A mail-merge field: "the recipient's first name", filled by the e-mail service."""
SURVEY_FIELD = {"$ask": "How was your visit?", "scale": [1, 5]}
"""A survey question object of the e-mail service."""

_RESERVED_DEMOS: dict[str, list[_Demo]] = {"step": [
    ("clinic-cardnote-1", "Email the card-on-file notice to lena.fischer@example.org.",
     [("find_patient", {"email": "lena.fischer@example.org"}),
      ("send_email", {"to": "lena.fischer@example.org", "template": "card_on_file",
                      "merge": CARD_FIELD})]),
    ("clinic-cardnote-2", "Email the card-on-file notice to omar.haddad@example.org.",
     [("find_patient", {"email": "omar.haddad@example.org"}),
      ("send_email", {"to": "omar.haddad@example.org", "template": "card_on_file",
                      "merge": CARD_FIELD})]),
], "param": [
    ("clinic-newsletter-1", "Send the spring newsletter to mei.tanaka@example.org.",
     [("send_email", {"to": "mei.tanaka@example.org", "template": "newsletter",
                      "merge": NAME_FIELD})]),
    ("clinic-newsletter-2", "Send the spring newsletter to raj.patel@example.org.",
     [("send_email", {"to": "raj.patel@example.org", "template": "newsletter",
                      "merge": NAME_FIELD})]),
], "ask": [
    ("clinic-survey-1", "Confirm appointment APT-50877 and ask ines.duarte@example.org to "
     "rate it.",
     [("confirm_appointment", {"appointment_id": "APT-50877"}),
      ("send_email", {"to": "ines.duarte@example.org", "template": "survey",
                      "appointment_id": "APT-50877", "merge": SURVEY_FIELD})]),
    ("clinic-survey-2", "Confirm appointment APT-50878 and ask Sam.Lee@Example.COM to rate it.",
     [("confirm_appointment", {"appointment_id": "APT-50878"}),
      ("send_email", {"to": "Sam.Lee@Example.COM", "template": "survey",
                      "appointment_id": "APT-50878", "merge": SURVEY_FIELD})]),
]}


def _run(demos: list[_Demo]) -> list[Trace]:
    desk = ClinicDesk()
    traces = []
    for tid, task, calls in demos:
        steps = []
        for action, args in calls:
            args = copy.deepcopy(args)
            steps.append(TraceStep(action=action, args=args,
                                   output=desk.call(action, copy.deepcopy(args))))
        traces.append(Trace(id=tid, task=task, steps=steps, outcome="success",
                            source="procmem tests/near_miss clinic demonstrations"))
    return traces


def demonstrations() -> list[Trace]:
    """The 14 clinic demonstrations, outputs from running the tools in order."""
    return _run(_DEMOS)


def reserved_demonstrations(key: str) -> list[Trace]:
    """The clinic demonstrations plus 2 whose args carry a ``$KEY`` object as data.

    Args:
        key: ``step`` (:data:`CARD_FIELD`), ``param`` (:data:`NAME_FIELD`) or ``ask``
            (:data:`SURVEY_FIELD`).
    """
    return _run(_DEMOS + _RESERVED_DEMOS[key])
