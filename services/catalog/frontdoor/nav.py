"""Each role's navigation in the header: (endpoint, label); the labels are gettext msgids."""

from __future__ import annotations

from shared.i18n import N_


NAV = {
    "faculty": [
        ("exchange.visits", N_("Exchange visits")),
        ("exchange.requests", N_("My requests")),
        ("exchange.profile", N_("My profile")),
    ],
    "coordinator": [
        ("manage.courses", N_("Courses")),
        ("manage.faculty", N_("Faculty")),
        ("manage.visits", N_("Visits")),
        ("manage.incoming_requests", N_("Incoming requests")),
        ("manage.outgoing_requests", N_("Outgoing requests")),
        ("manage.applications", N_("Student applications")),
        ("manage.partners", N_("Partners")),
    ],
    "student": [
        ("applications.mine", N_("My applications")),
    ],
}
