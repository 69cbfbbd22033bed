/*-------------------------------------------------------------------------
 *
 * tenancy.c
 *	  Who is calling: the primitives of programme isolation.
 *
 * The entry points run as the extension's owner (SECURITY DEFINER), so
 * current_user inside them is the owner, not the caller.  The caller is
 * the role the session runs as (its login role, or the role of SET ROLE):
 * GetOuterUserId(), which a SECURITY DEFINER function does not change.
 * Row-level security policies and the functions both ask these questions
 * about that role, so a table read and a function call agree on what a
 * caller may see.
 *
 * Inside a security-restricted operation (VACUUM, ANALYZE, CREATE INDEX,
 * REFRESH MATERIALIZED VIEW, autovacuum) PostgreSQL runs a table owner's
 * index expressions and the like as that owner, while the session's role
 * stays whoever started the operation: often a superuser, and for
 * autovacuum always.  The session's role is then not the caller, so these
 * functions refuse to answer, and with them every entry point.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

/*
 * The calling role; refused inside a security-restricted operation.
 *
 * Inside another role's SECURITY DEFINER code (the current user differs
 * from the session's and is no superuser) that role is the one acting, and
 * reads through the views and policies are its own: PostgreSQL lends a
 * SECURITY DEFINER function its owner's privileges, never its caller's.
 * Inside the extension's own entry points the current user is the
 * extension's owner, a superuser, and the caller is the session's role.
 */
Oid
card_caller_role(void)
{
	Oid			current = GetUserId();
	Oid			outer = GetOuterUserId();

	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the card extension cannot be used within a security-restricted operation"),
				 errdetail("Index expressions, VACUUM, ANALYZE and materialized view refreshes run as a table's owner, not as the session's role.")));
	if (current != outer && !superuser_arg(current))
		return current;
	return outer;
}

/* card.caller() RETURNS name */
PG_FUNCTION_INFO_V1(card_caller);
Datum
card_caller(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(DirectFunctionCall1(namein,
										CStringGetDatum(GetUserNameFromId(card_caller_role(), false))));
}

/*
 * card.caller_sees_all() RETURNS boolean
 *
 * Superusers and BYPASSRLS roles see every programme, as they see every
 * row of a table with row-level security.
 */
PG_FUNCTION_INFO_V1(card_caller_sees_all);
Datum
card_caller_sees_all(PG_FUNCTION_ARGS)
{
	Oid			caller = card_caller_role();

	PG_RETURN_BOOL(superuser_arg(caller) || has_bypassrls_privilege(caller));
}

/*
 * card.caller_has_role(role_name name) RETURNS boolean
 *
 * Whether the caller has the privileges of the named role (is it, or
 * inherits from it).  A role dropped since it was granted a programme
 * counts as held by nobody.
 */
PG_FUNCTION_INFO_V1(card_caller_has_role);
Datum
card_caller_has_role(PG_FUNCTION_ARGS)
{
	Name		role_name = PG_GETARG_NAME(0);
	Oid			role = get_role_oid(NameStr(*role_name), true);

	Oid			caller = card_caller_role();

	PG_RETURN_BOOL(OidIsValid(role) && has_privs_of_role(caller, role));
}
