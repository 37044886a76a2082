/* Prints the field spec of every event type, one "TYPE FIELD KIND FLAG"
 * line per field (FLAG: required, optional or nullable), from the domain's
 * event table, so that check-openapi.py can hold the request bodies of the
 * OpenAPI document against what lib/domain enforces.  election_id, implicit
 * in the table, is printed first for every type. */
#include <stdio.h>

#include "domain/event.h"
#include "domain/table.h"

static const char *const kind_names[] = {
	[PV_FK_ULID] = "ULID",     [PV_FK_NAME] = "NAME",   [PV_FK_TEXT] = "TEXT",
	[PV_FK_URL] = "URL",       [PV_FK_EMAIL] = "EMAIL", [PV_FK_DATE] = "DATE",
	[PV_FK_RATING] = "RATING",
};

static const char *flag_name(unsigned flags)
{
	if (flags & PV_FF_OPTIONAL)
		return "optional";
	if (flags & PV_FF_NULLABLE)
		return "nullable";
	return "required";
}

static const char *kind_name(enum pv_field_kind kind)
{
	if ((size_t)kind >= sizeof kind_names / sizeof kind_names[0] || !kind_names[kind])
		return "UNKNOWN";
	return kind_names[kind];
}

int main(void)
{
	printf("limits NAME %d TEXT %d URL %d EMAIL %d RATING %d..%d\n", PV_NAME_MAX,
	       PV_DESCRIPTION_MAX, PV_URL_MAX, PV_EMAIL_MAX, PV_RATING_MIN, PV_RATING_MAX);
	for (int t = 0; t < PV_EV__COUNT; t++) {
		const struct pv_event_def *def = &pv_event_table[t];

		printf("%s election_id ULID required\n", def->name);
		for (const struct pv_field_spec *f = def->fields; f->name; f++)
			printf("%s %s %s %s\n", def->name, f->name, kind_name(f->kind),
			       flag_name(f->flags));
	}
	return 0;
}
