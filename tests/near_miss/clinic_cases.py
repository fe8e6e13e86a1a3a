"""Near-miss cases over the clinic desk (:mod:`near_miss.clinic_tools`).

Every expected call is written by hand from the task text: what a careful agent
sends. The tools' rules fix the values that come from outputs: the patient ids
of :data:`near_miss.clinic_tools._PATIENTS`, and ``APT-60001`` for the first
booking in a fresh database.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from .clinic_tools import (
    CARD_FIELD,
    NAME_FIELD,
    SIGNATURES,
    SURVEY_FIELD,
    ClinicDesk,
    demonstrations,
    reserved_demonstrations,
)
from .harness import Call, Case, TrainingSet

__all__ = ["CASES", "RESERVED", "RESERVED_CASES", "SIGNATURES", "TRAINING", "ClinicDesk"]

TRAINING = TrainingSet("clinic", demonstrations)
"""The 14 clinic demonstrations."""
RESERVED = {key: TrainingSet(f"clinic-reserved-{key}", partial(reserved_demonstrations, key))
            for key in ("step", "param", "ask")}
"""By reserved key: the clinic demonstrations and 2 with a ``$KEY`` object in their args."""

RAJ, ZOE, SAM, ANNA, JO, INES = ("raj.patel@example.org",
                                 "zoe.oneil+clinic@mail.health-example.co.uk",
                                 "Sam.Lee@Example.COM", "anna_k-99@clinic.example", "jo@wu.io",
                                 "ines.duarte@example.org")
PID = {RAJ: "PT-1004", ZOE: "PT-1005", SAM: "PT-1006", ANNA: "PT-1007", JO: "PT-1008",
       INES: "PT-1009"}


def call(action: str, **args: Any) -> Call:
    return Call(action, args)


def book(email: str, doctor: str, date: str, reason: str) -> tuple[Call, ...]:
    """The three calls of a booking in a fresh database."""
    return (call("find_patient", email=email),
            call("book_appointment", patient_id=PID[email], doctor_id=doctor, date=date,
                 reason=reason),
            call("send_email", to=email, template="booking_confirmation",
                 appointment_id="APT-60001"))


def move(email: str, address: str) -> tuple[Call, ...]:
    return (call("find_patient", email=email),
            call("update_address", patient_id=PID[email], address=address),
            call("send_email", to=email, template="address_changed"))


def cancel(appointment: str, reason: str) -> tuple[Call, ...]:
    return (call("cancel_appointment", appointment_id=appointment, reason=reason),)


def refund(appointment: str, amount: float, reason: str) -> tuple[Call, ...]:
    return (call("refund_copay", appointment_id=appointment, amount=amount, reason=reason),)


_BOOK = "Book an appointment for {email} with {doctor} on {date}, reason: {reason}"
_MOVE = "Update the address of {email} to: {address}"

CASES: list[Case] = [
    # -- clean: worded like the demonstrations, every value plainly in the text
    Case("cancel-clean", "clean", "Cancel appointment APT-50874, reason: feeling better.",
         cancel("APT-50874", "feeling better"), must_complete=True),
    Case("refund-clean", "clean",
         "Refund $40 of the copay for appointment APT-50874, reason: charged twice.",
         refund("APT-50874", 40, "charged twice"), must_complete=True),
    # -- reuse: the patient's e-mail is looked up in step 1 and written to in step 3
    Case("book-clean", "reuse", _BOOK.format(email=RAJ, doctor="DR-204", date="2026-07-01",
                                             reason="blood test results."),
         book(RAJ, "DR-204", "2026-07-01", "blood test results"), must_complete=True),
    Case("move-clean", "reuse", _MOVE.format(email=RAJ, address="3 Mill Street, Dover NH."),
         move(RAJ, "3 Mill Street, Dover NH"), must_complete=True),
    Case("move-second-email-after", "reuse",
         _MOVE.format(email=RAJ, address="3 Mill Street, Dover NH.")
         + " Questions go to front.desk@example.org.",
         move(RAJ, "3 Mill Street, Dover NH"),
         note="the notice goes to the patient, not to the other address in the task"),
    Case("book-reason-holds-an-email", "reuse",
         _BOOK.format(email=RAJ, doctor="DR-204", date="2026-07-01",
                      reason="referral from dr.kim@example.org."),
         book(RAJ, "DR-204", "2026-07-01", "referral from dr.kim@example.org"),
         note="a second e-mail inside the reason must not become the recipient"),
    Case("book-patient-named-last", "reuse",
         "With DR-204 on 2026-07-01, book an appointment for raj.patel@example.org, "
         "reason: blood test results.",
         book(RAJ, "DR-204", "2026-07-01", "blood test results"),
         note="the same values in another order"),
    # -- span: free text and addresses of other lengths than the demonstrations'
    Case("cancel-reason-long-multi-clause", "span",
         "Cancel appointment APT-50876, reason: the patient broke a leg skiing, is in "
         "hospital in Innsbruck and will call back next month.",
         cancel("APT-50876", "the patient broke a leg skiing, is in hospital in Innsbruck "
                "and will call back next month")),
    Case("cancel-reason-one-word", "span", "Cancel appointment APT-50876, reason: duplicate.",
         cancel("APT-50876", "duplicate")),
    Case("cancel-reason-no-final-period", "span",
         "Cancel appointment APT-50876, reason: patient moved away",
         cancel("APT-50876", "patient moved away")),
    Case("cancel-reason-then-another-sentence", "span",
         "Cancel appointment APT-50876, reason: feeling better. She prefers a phone call "
         "next time.",
         cancel("APT-50876", "feeling better")),
    Case("cancel-reason-with-inner-period", "span",
         "Cancel appointment APT-50876, reason: Dr. Okafor is on leave.",
         cancel("APT-50876", "Dr. Okafor is on leave"),
         note="the first period is not the end of the reason"),
    Case("book-reason-long-with-commas", "span",
         _BOOK.format(email=RAJ, doctor="DR-204", date="2026-07-01",
                      reason="recurring migraines, worse in the morning, with nausea."),
         book(RAJ, "DR-204", "2026-07-01",
              "recurring migraines, worse in the morning, with nausea")),
    Case("book-reason-one-word", "span",
         _BOOK.format(email=RAJ, doctor="DR-204", date="2026-07-01", reason="vaccination."),
         book(RAJ, "DR-204", "2026-07-01", "vaccination")),
    Case("refund-reason-long", "span",
         "Refund $40 of the copay for appointment APT-50874, reason: the visit was cut short "
         "because the doctor was called to an emergency, so the patient was seen for ten "
         "minutes only.",
         refund("APT-50874", 40, "the visit was cut short because the doctor was called to "
                "an emergency, so the patient was seen for ten minutes only")),
    Case("move-address-long", "span",
         _MOVE.format(email=RAJ, address="1600 Pennsylvania Avenue NW, Washington DC 20500."),
         move(RAJ, "1600 Pennsylvania Avenue NW, Washington DC 20500"),
         note="an address longer than every demonstration's must not lose its last words"),
    Case("move-address-no-final-period", "span",
         _MOVE.format(email=RAJ, address="77 Massachusetts Avenue, Cambridge MA"),
         move(RAJ, "77 Massachusetts Avenue, Cambridge MA")),
    Case("move-address-with-flat", "span",
         _MOVE.format(email=INES, address="Flat 4B, 12 Elm Street, Springfield IL."),
         move(INES, "Flat 4B, 12 Elm Street, Springfield IL")),
    # -- shape: values of shapes no demonstration had
    Case("book-email-plus-subdomain", "shape",
         _BOOK.format(email=ZOE, doctor="DR-204", date="2026-06-09", reason="hearing test."),
         book(ZOE, "DR-204", "2026-06-09", "hearing test")),
    Case("book-email-capitals", "shape",
         _BOOK.format(email=SAM, doctor="DR-311", date="2026-06-10", reason="flu shot."),
         book(SAM, "DR-311", "2026-06-10", "flu shot")),
    Case("move-email-underscore-hyphen", "shape",
         _MOVE.format(email=ANNA, address="5 Birch Court, Salem OR."),
         move(ANNA, "5 Birch Court, Salem OR")),
    Case("book-email-in-angle-brackets", "shape",
         "Book an appointment for <jo@wu.io> with DR-311 on 2026-08-21, reason: stitches "
         "removal.",
         book(JO, "DR-311", "2026-08-21", "stitches removal")),
    Case("cancel-id-seven-digits", "shape",
         "Cancel appointment APT-1234567, reason: feeling better.",
         cancel("APT-1234567", "feeling better")),
    Case("cancel-id-one-digit", "shape", "Cancel appointment APT-9, reason: feeling better.",
         cancel("APT-9", "feeling better")),
    Case("book-doctor-four-digits", "shape",
         _BOOK.format(email=RAJ, doctor="DR-2041", date="2026-07-01", reason="blood test."),
         book(RAJ, "DR-2041", "2026-07-01", "blood test")),
    Case("book-date-in-words", "shape",
         _BOOK.format(email=RAJ, doctor="DR-204", date="14 March 2026", reason="blood test."),
         book(RAJ, "DR-204", "2026-03-14", "blood test"),
         note="the booking tool takes YYYY-MM-DD: '14 March 2026' must not be sent"),
    Case("refund-amount-thousands-separator", "shape",
         "Refund $1,250.00 of the copay for appointment APT-50876, reason: billed twice.",
         refund("APT-50876", 1250, "billed twice")),
    Case("refund-amount-one-digit", "shape",
         "Refund $7 of the copay for appointment APT-9, reason: billed twice.",
         refund("APT-9", 7, "billed twice")),
    Case("refund-amount-in-words-of-currency", "shape",
         "Refund 15.25 dollars of the copay for appointment APT-50878, reason: billed twice.",
         refund("APT-50878", 15.25, "billed twice")),
    # -- number: numbers inside other values and next to the ones that matter
    Case("refund-numbers-in-parenthesis", "number",
         "Refund $40 of the copay for appointment APT-50874 (visit 2 of 3, room 12), "
         "reason: charged twice.",
         refund("APT-50874", 40, "charged twice")),
    Case("refund-reordered-with-count", "number",
         "For appointment APT-50874 (billed 2 times), refund $15 of the copay, reason: "
         "charged twice.",
         refund("APT-50874", 15, "charged twice")),
    Case("cancel-reason-holds-street-number", "number",
         "Cancel appointment APT-50876, reason: patient moved to 1600 Pennsylvania Avenue.",
         cancel("APT-50876", "patient moved to 1600 Pennsylvania Avenue")),
    Case("cancel-id-looks-like-a-date", "number",
         "Cancel appointment APT-20260314, reason: the 2026-03-14 slot clashes with work.",
         cancel("APT-20260314", "the 2026-03-14 slot clashes with work")),
    Case("book-phone-number-after", "number",
         _BOOK.format(email=RAJ, doctor="DR-204", date="2026-07-01", reason="blood test.")
         + " Call 555-0100 if late.",
         book(RAJ, "DR-204", "2026-07-01", "blood test")),
    Case("move-worded-change-street-number", "number",
         "Change the address of raj.patel@example.org to: 1600 Pennsylvania Avenue NW, "
         "Washington DC 20500.",
         move(RAJ, "1600 Pennsylvania Avenue NW, Washington DC 20500"),
         note="the issue's report: a refund took the street number as its order number"),
    # -- one-word: tasks one word away from another procedure's demonstrations
    Case("confirm-clean", "one-word", "Confirm appointment APT-50876.",
         (call("confirm_appointment", appointment_id="APT-50876"),), must_complete=True),
    Case("cancel-without-reason", "one-word", "Cancel appointment APT-50876.", (),
         note="one word from the confirm demonstrations; the reason is missing: nothing "
              "may be sent"),
    Case("confirm-with-reason", "one-word",
         "Confirm appointment APT-50876, reason: patient called back.",
         (call("confirm_appointment", appointment_id="APT-50876"),),
         note="one word from a cancel demonstration"),
    Case("refund-without-amount", "one-word",
         "Refund appointment APT-50876, reason: feeling better.", (),
         note="one word from a cancel task; the amount is missing: nothing may be sent"),
    Case("cancel-worded-like-a-booking", "one-word",
         "Cancel the appointment for raj.patel@example.org with DR-204 on 2026-07-01, "
         "reason: blood test results.",
         (call("find_patient", email=RAJ),),
         note="no appointment may be booked; looking the patient up is harmless"),
    Case("resend-booking-confirmation", "one-word",
         "Email the booking confirmation for appointment APT-50874 to raj.patel@example.org.",
         (call("send_email", to=RAJ, template="booking_confirmation",
               appointment_id="APT-50874"),),
         note="no procedure only sends the e-mail: nothing may be booked"),
]

RESERVED_CASES: list[tuple[str, Case]] = [  # (reserved key of the training set, case)
    ("step", Case("card-field-stays-data", "reserved",
         "Email the card-on-file notice to raj.patel@example.org.",
         (call("find_patient", email=RAJ),
          call("send_email", to=RAJ, template="card_on_file", merge=CARD_FIELD)),
         must_complete=True,
         note="the merge field {'$step': 's1', 'path': '/card'} is data: sending the card "
              "number from step 1 would leak it")),
    ("param", Case("name-field-stays-data", "reserved",
         "Send the spring newsletter to ines.duarte@example.org.",
         (call("send_email", to=INES, template="newsletter", merge=NAME_FIELD),),
         must_complete=True)),
    ("ask", Case("ask-object-stays-data", "reserved",
         "Confirm appointment APT-50874 and ask raj.patel@example.org to rate it.",
         (call("confirm_appointment", appointment_id="APT-50874"),
          call("send_email", to=RAJ, template="survey", appointment_id="APT-50874",
               merge=SURVEY_FIELD)),
         must_complete=True,
         note="an object with '$ask' is data, not a question for the agent")),
    ("step", Case("card-field-unseen-email", "reserved",
         "Email the card-on-file notice to zoe.oneil+clinic@mail.health-example.co.uk.",
         (call("find_patient", email=ZOE),
          call("send_email", to=ZOE, template="card_on_file", merge=CARD_FIELD)))),
    ("param", Case("plain-procedure-beside-reserved-data", "reserved",
         "Cancel appointment APT-50874, reason: feeling better.",
         cancel("APT-50874", "feeling better"), must_complete=True,
         note="demonstrations with reserved-key data must not stop the others from learning")),
]
