/* Metadata as AppendSession's record properties (kurrentdb_props.h). */
#include "eventstore/kurrentdb_props.h"

#include "xalloc.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef Kurrentdb__Protocol__V2__Streams__Value Value;
typedef Kurrentdb__Protocol__V2__Streams__Struct Struct;
typedef Kurrentdb__Protocol__V2__Streams__Struct__FieldsEntry FieldsEntry;
typedef Kurrentdb__Protocol__V2__Streams__AppendRecord__PropertiesEntry PropertiesEntry;
typedef Kurrentdb__Protocol__V2__Streams__ListValue ListValue;

/* The two map entry types are the same message (key 1, Value 2) under two
 * names; one builder fills both. */
_Static_assert(sizeof(FieldsEntry) == sizeof(PropertiesEntry) &&
		       offsetof(FieldsEntry, key) == offsetof(PropertiesEntry, key) &&
		       offsetof(FieldsEntry, value) == offsetof(PropertiesEntry, value),
	       "map entries share a layout");

/* Integers a double holds exactly, below the 1e15 where .NET's shortest
 * round-trip form may switch to an exponent (jansson would read a real). */
#define EXACT_INT_MAX 999999999999999LL

static bool value_exact(const json_t *j, int depth)
{
	size_t i;
	const char *key;
	json_t *v;

	if (depth > 32) /* protobuf's own nesting limit is 100; ours stays well inside */
		return false;
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		json_object_foreach((json_t *)j, key,
				    v) if (!value_exact(v, depth + 1)) return false;
		return true;
	case JSON_ARRAY:
		json_array_foreach(j, i, v) if (!value_exact(v, depth + 1)) return false;
		return true;
	case JSON_INTEGER:
		return json_integer_value(j) <= EXACT_INT_MAX &&
		       json_integer_value(j) >= -EXACT_INT_MAX;
	case JSON_REAL: /* 1.0 would come back as 1, an integer */ return false;
	default: /* strings, true, false, null */ return true;
	}
}

bool pv_kdb_props_exact(const json_t *metadata)
{
	const char *key;
	json_t *v;

	if (!metadata || json_is_null(metadata))
		return true;
	/* An empty object would read back as none. */
	if (!json_is_object(metadata) || json_object_size(metadata) == 0)
		return false;
	json_object_foreach((json_t *)metadata, key,
			    v) if (key[0] == '$' || key[0] == '\0') /* the server's, or refused */
		return false;
	return value_exact(metadata, 0);
}

static void *keep(struct pv_kdb_props *mem, void *p)
{
	if (mem->n == mem->cap) {
		mem->cap = mem->cap ? mem->cap * 2 : 16;
		mem->blocks = pv_xreallocarray(mem->blocks, mem->cap, sizeof *mem->blocks);
	}
	mem->blocks[mem->n++] = p;
	return p;
}

static Value *value_of(const json_t *j, struct pv_kdb_props *mem);

/* The entries of an object, for a Struct or for the properties. */
static void **entries_of(const json_t *obj, const ProtobufCMessageDescriptor *entry, size_t *count,
			 struct pv_kdb_props *mem)
{
	void **out = keep(mem, pv_xcalloc(json_object_size(obj) + 1, sizeof *out));
	const char *key;
	json_t *v;
	size_t n = 0;

	json_object_foreach((json_t *)obj, key, v)
	{
		FieldsEntry *e = keep(mem, pv_xcalloc(1, sizeof *e));
		protobuf_c_message_init(entry, e);
		e->key = (char *)key;
		e->value = value_of(v, mem);
		out[n++] = e;
	}
	*count = n;
	return out;
}

static Value *value_of(const json_t *j, struct pv_kdb_props *mem)
{
	Value *v = keep(mem, pv_xcalloc(1, sizeof *v));
	size_t i;
	json_t *item;

	kurrentdb__protocol__v2__streams__value__init(v);
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		Struct *s = keep(mem, pv_xcalloc(1, sizeof *s));
		kurrentdb__protocol__v2__streams__struct__init(s);
		s->fields = (FieldsEntry **)entries_of(
			j, &kurrentdb__protocol__v2__streams__struct__fields_entry__descriptor,
			&s->n_fields, mem);
		v->kind_case = KURRENTDB__PROTOCOL__V2__STREAMS__VALUE__KIND_STRUCT_VALUE;
		v->struct_value = s;
		break;
	}
	case JSON_ARRAY: {
		ListValue *l = keep(mem, pv_xcalloc(1, sizeof *l));
		kurrentdb__protocol__v2__streams__list_value__init(l);
		l->values = keep(mem, pv_xcalloc(json_array_size(j) + 1, sizeof *l->values));
		json_array_foreach(j, i, item) l->values[l->n_values++] = value_of(item, mem);
		v->kind_case = KURRENTDB__PROTOCOL__V2__STREAMS__VALUE__KIND_LIST_VALUE;
		v->list_value = l;
		break;
	}
	case JSON_STRING:
		v->kind_case = KURRENTDB__PROTOCOL__V2__STREAMS__VALUE__KIND_STRING_VALUE;
		v->string_value = (char *)json_string_value(j);
		break;
	case JSON_INTEGER:
		v->kind_case = KURRENTDB__PROTOCOL__V2__STREAMS__VALUE__KIND_NUMBER_VALUE;
		v->number_value = (double)json_integer_value(j);
		break;
	case JSON_REAL:
		v->kind_case = KURRENTDB__PROTOCOL__V2__STREAMS__VALUE__KIND_NUMBER_VALUE;
		v->number_value = json_real_value(j);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		v->kind_case = KURRENTDB__PROTOCOL__V2__STREAMS__VALUE__KIND_BOOL_VALUE;
		v->bool_value = json_is_true(j);
		break;
	case JSON_NULL:
		v->kind_case = KURRENTDB__PROTOCOL__V2__STREAMS__VALUE__KIND_NULL_VALUE;
		v->null_value = KURRENTDB__PROTOCOL__V2__STREAMS__NULL_VALUE__NULL_VALUE;
		break;
	}
	return v;
}

PropertiesEntry **pv_kdb_props_build(const json_t *metadata, size_t *count,
				     struct pv_kdb_props *mem)
{
	*count = 0;
	if (!metadata || !json_is_object(metadata))
		return NULL;
	return (PropertiesEntry **)entries_of(
		metadata,
		&kurrentdb__protocol__v2__streams__append_record__properties_entry__descriptor,
		count, mem);
}

void pv_kdb_props_free(struct pv_kdb_props *mem)
{
	for (size_t i = 0; i < mem->n; i++)
		free(mem->blocks[i]);
	free(mem->blocks);
	memset(mem, 0, sizeof *mem);
}

bool pv_kdb_props_strip(json_t *metadata, const char *type)
{
	const json_t *name = json_object_get(metadata, "$schema.name");
	const json_t *format = json_object_get(metadata, "$schema.format");

	if (!json_is_string(name) || !json_is_string(format) ||
	    strcmp(json_string_value(name), type) != 0)
		return false;
	json_object_del(metadata, "$schema.name");
	json_object_del(metadata, "$schema.format");
	json_object_del(metadata, "$schema.id");
	return true;
}
