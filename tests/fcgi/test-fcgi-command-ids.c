/* fcgi/command_ids.c: minted event ids are UUIDv7 whose MAC holds under
 * the key they were made with and under no other; one hex digit changed
 * anywhere, a random UUIDv4 or a UUIDv5 fails; the time comes back out;
 * ids made in the same millisecond differ. */
#include <string.h>

#include "command_ids.h"

#include "pv_test.h"

static const unsigned char key[32] = "0123456789abcdef0123456789abcde";
static const unsigned char other[32] = "0123456789abcdef0123456789abcdX";

static void minted_ids_check(void **state)
{
	char id[PV_UUID_LEN + 1], id2[PV_UUID_LEN + 1];
	long long ms = 0;

	pv_command_id_make(key, sizeof key, 1733480000123LL, id);
	assert_true(pv_uuid_valid(id));
	assert_int_equal(id[14], '7');           /* version */
	assert_non_null(strchr("89ab", id[19])); /* variant */
	assert_true(pv_command_id_check(key, sizeof key, id, &ms));
	assert_int_equal(ms, 1733480000123LL);
	assert_false(pv_command_id_check(other, sizeof other, id, NULL));
	pv_command_id_make(key, sizeof key, 1733480000123LL, id2);
	assert_string_not_equal(id, id2);
}

static void any_changed_digit_fails(void **state)
{
	char id[PV_UUID_LEN + 1];

	pv_command_id_make(key, sizeof key, 1733480000123LL, id);
	for (int i = 0; i < PV_UUID_LEN; i++) {
		char typo[PV_UUID_LEN + 1];

		if (id[i] == '-')
			continue;
		memcpy(typo, id, sizeof typo);
		typo[i] = id[i] == '0' ? '1' : '0';
		assert_false(pv_command_id_check(key, sizeof key, typo, NULL));
	}
}

static void other_ids_fail(void **state)
{
	assert_false(
		pv_command_id_check(key, sizeof key, "3e4666bf-d5e5-4aa7-b8ce-cefe41c7568a", NULL));
	assert_false(
		pv_command_id_check(key, sizeof key, "886313e1-3b8a-5372-9b90-0c9aee199e5d", NULL));
	assert_false(pv_command_id_check(key, sizeof key, "not-a-uuid", NULL));
	assert_false(pv_command_id_check(key, sizeof key, "", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minted_ids_check),
		cmocka_unit_test(any_changed_digit_fails),
		cmocka_unit_test(other_ids_fail),
	};

	return PV_RUN_TESTS(tests);
}
