/*-------------------------------------------------------------------------
 *
 * tenancy.c
 *	  Who is calling: the primitives of programme isolation.
 *
 * The entry points are SECURITY INVOKER and switch to the extension's
 * owner themselves (card_entry_call): on entry they take the caller from
 * GetUserId(), the role PostgreSQL says is acting (the session's role, or
 * the owner of a SECURITY DEFINER function that calls them), and keep it
 * for the call.  A
 * SECURITY DEFINER entry point could not: PostgreSQL switches to the owner
 * before the function runs and keeps the caller to itself, so another
 * role's definer code calling it would act with the session's programmes
 * (a confused deputy).  PL/pgSQL and SQL entry points get the same switch
 * from a C wrapper of the same name (card_plpgsql_entry) whose body keeps
 * the name in schema card_internal.
 *
 * Row-level security policies and the functions both ask these questions
 * about the caller, so a table read and a function call agree on what a
 * caller may see.  Outside an entry point (a policy evaluated for a
 * direct read) the caller is the current user.
 *
 * Inside a security-restricted operation (VACUUM, ANALYZE, CREATE INDEX,
 * REFRESH MATERIALIZED VIEW, autovacuum) the extension refuses to work:
 * nothing there has a reason to order cards or read PANs, and an index
 * expression calling an entry point would run it on every maintenance pass.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "access/transam.h"
#include "catalog/pg_auth_members.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/catcache.h"
#include "utils/syscache.h"

/* The caller of the entry point running now, or InvalidOid outside one. */
static Oid	entry_caller = InvalidOid;

/* How many entry points are running, one inside another. */
static int	entry_depth = 0;

/* Whether an entry point is running. */
bool
card_entry_running(void)
{
	return entry_depth > 0;
}

/* Whether the entry point running now was called by another one. */
bool
card_entry_nested(void)
{
	return entry_depth > 1;
}

static void
refuse_restricted(void)
{
	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the card extension cannot be used within a security-restricted operation"),
				 errdetail("Index expressions, VACUUM, ANALYZE and materialized view refreshes run as a table's owner, not as the session's role.")));
}

/* The calling role; refused inside a security-restricted operation. */
Oid
card_caller_role(void)
{
	refuse_restricted();
	return OidIsValid(entry_caller) ? entry_caller : GetUserId();
}

/* The owner of a function: what SECURITY DEFINER would have switched to. */
static Oid
function_owner(Oid fn_oid)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", fn_oid);
	owner = ((Form_pg_proc) GETSTRUCT(tuple))->proowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * A caller who sees no programme at all finds nothing: its "... does not
 * exist" error (P0002) gets a hint naming card.programme_grant.  Whether it
 * sees none is decided when the outermost entry point starts, for every
 * call alike: decided later, from whatever set a lookup happened to build,
 * the hint would follow whether the id exists.  Called while the error is
 * being handled (no catalog access); returns if the error is not such an
 * error.
 */
static void
hint_missing_grant(MemoryContext cxt)
{
	static const char suffix[] = " does not exist";
	MemoryContext old;
	ErrorData  *edata;
	size_t		len;

	old = MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	len = edata->message ? strlen(edata->message) : 0;
	if (edata->sqlerrcode != ERRCODE_NO_DATA_FOUND || edata->hint != NULL ||
		len < sizeof(suffix) || strcmp(edata->message + len - (sizeof(suffix) - 1), suffix) != 0)
	{
		FreeErrorData(edata);
		MemoryContextSwitchTo(old);
		return;
	}
	FlushErrorState();
	edata->hint = pstrdup("The calling role sees no programme: grant it one with card.programme_grant(programme_id, role).");
	ReThrowError(edata);
}

/*
 * Run body as the entry point's owner, with the acting role kept as the
 * caller.  One entry point calling another (card_update calling
 * card_set_status) finds the owner acting and keeps the outer caller.
 */
Datum
card_entry_call(FunctionCallInfo fcinfo, PGFunction body)
{
	Oid			save_user;
	int			save_sec;
	Oid			save_caller = entry_caller;
	MemoryContext cxt = CurrentMemoryContext;
	Oid			owner;
	volatile bool sees_nothing = false;
	Datum		result;

	refuse_restricted();
	GetUserIdAndSecContext(&save_user, &save_sec);
	owner = function_owner(fcinfo->flinfo->fn_oid);
	if (!(OidIsValid(entry_caller) && save_user == owner))
		entry_caller = save_user;
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	entry_depth++;
	PG_TRY();
	{
		/* The outermost entry point speaks to the caller (see above). */
		if (!OidIsValid(save_caller))
			sees_nothing = card_caller_sees_no_programme();
		result = body(fcinfo);
	}
	PG_CATCH();
	{
		entry_depth--;
		SetUserIdAndSecContext(save_user, save_sec);
		entry_caller = save_caller;
		if (sees_nothing)
			hint_missing_grant(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	entry_depth--;
	SetUserIdAndSecContext(save_user, save_sec);
	entry_caller = save_caller;
	return result;
}

/*
 * The body of a PL/pgSQL or SQL entry point: the function of the same
 * name and argument types in schema card_internal, looked up once per
 * call site.
 */
static Datum
call_internal_body(FunctionCallInfo fcinfo)
{
	FmgrInfo   *body = (FmgrInfo *) fcinfo->flinfo->fn_extra;
	LOCAL_FCINFO(inner, FUNC_MAX_ARGS);
	Datum		result;

	if (body == NULL)
	{
		HeapTuple	tuple = SearchSysCache1(PROCOID,
											ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
		Form_pg_proc proc;
		Oid			body_oid;

		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
		proc = (Form_pg_proc) GETSTRUCT(tuple);
		body_oid = LookupFuncName(list_make2(makeString("card_internal"),
											 makeString(pstrdup(NameStr(proc->proname)))),
								  proc->pronargs, proc->proargtypes.values, false);
		ReleaseSysCache(tuple);
		body = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(FmgrInfo));
		fmgr_info_cxt(body_oid, body, fcinfo->flinfo->fn_mcxt);
		body->fn_expr = fcinfo->flinfo->fn_expr;
		fcinfo->flinfo->fn_extra = body;
	}
	InitFunctionCallInfoData(*inner, body, fcinfo->nargs, fcinfo->fncollation,
							 fcinfo->context, fcinfo->resultinfo);
	memcpy(inner->args, fcinfo->args, sizeof(NullableDatum) * fcinfo->nargs);
	result = FunctionCallInvoke(inner);
	fcinfo->isnull = inner->isnull;
	return result;
}

/* card.<entry point>(...): the wrapper of a PL/pgSQL or SQL body. */
PG_FUNCTION_INFO_V1(card_plpgsql_entry);
Datum
card_plpgsql_entry(PG_FUNCTION_ARGS)
{
	return card_entry_call(fcinfo, call_internal_body);
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
 * Roles every tenant's roles may hold: the extension's capability roles
 * and PostgreSQL's predefined roles.  A programme reaches no one through
 * them unless a superuser granted it to one of them itself.
 */
static const char *const shared_role_names[] = {
	"card_admin", "card_api", "card_processor", "card_hosted_pages", "card_reader"
};

static bool
role_is_shared(Oid role)
{
	char	   *name = GetUserNameFromId(role, true);

	if (name == NULL)
		return false;
	if (role < FirstNormalObjectId && strncmp(name, "pg_", 3) == 0)
		return true;			/* predefined */
	for (size_t i = 0; i < lengthof(shared_role_names); i++)
		if (strcmp(name, shared_role_names[i]) == 0)
			return true;
	return false;
}

/*
 * Whether a shared role holds role, directly or through other roles: then
 * every tenant's roles have its privileges.  Walks the members of role
 * down the membership graph.
 */
static bool
role_reaches_shared(Oid role)
{
	List	   *todo = list_make1_oid(role);
	List	   *seen = NIL;

	while (todo != NIL)
	{
		Oid			current = linitial_oid(todo);
		CatCList   *members;

		todo = list_delete_first(todo);
		if (list_member_oid(seen, current))
			continue;
		seen = lappend_oid(seen, current);
		if (current != role && role_is_shared(current))
			return true;
		members = SearchSysCacheList1(AUTHMEMROLEMEM, ObjectIdGetDatum(current));
		for (int i = 0; i < members->n_members; i++)
		{
			Form_pg_auth_members m = (Form_pg_auth_members) GETSTRUCT(&members->members[i]->tuple);

			todo = lappend_oid(todo, m->member);
		}
		ReleaseSysCacheList(members);
	}
	return false;
}

/*
 * Whether the member of a membership agreed to it: the grantor was a
 * superuser, or could act as the member (has its privileges or ADMIN
 * OPTION on it).  A tenant with ADMIN OPTION on its own role can make
 * another tenant's login a member of it without asking (GRANT role TO
 * b_login); such a membership carries no programme.
 */
static bool
membership_consented(Oid member, Oid grantor)
{
	return superuser_arg(grantor) || has_privs_of_role(grantor, member) ||
		is_admin_of_role(grantor, member);
}

/*
 * Whether the caller has the privileges of role (as has_privs_of_role:
 * through memberships of roles that inherit) by memberships its members
 * agreed to.
 */
static bool
caller_reaches(Oid caller, Oid role)
{
	List	   *todo = list_make1_oid(caller);
	List	   *seen = NIL;

	if (superuser_arg(caller))
		return true;			/* as has_privs_of_role: every role's privileges */
	while (todo != NIL)
	{
		Oid			current = linitial_oid(todo);
		HeapTuple	authid;
		bool		inherits;
		CatCList   *memberships;

		todo = list_delete_first(todo);
		if (current == role)
			return true;
		if (list_member_oid(seen, current))
			continue;
		seen = lappend_oid(seen, current);
		authid = SearchSysCache1(AUTHOID, ObjectIdGetDatum(current));
		if (!HeapTupleIsValid(authid))
			continue;
		inherits = ((Form_pg_authid) GETSTRUCT(authid))->rolinherit;
		ReleaseSysCache(authid);
		if (!inherits)
			continue;
		memberships = SearchSysCacheList1(AUTHMEMMEMROLE, ObjectIdGetDatum(current));
		for (int i = 0; i < memberships->n_members; i++)
		{
			Form_pg_auth_members m = (Form_pg_auth_members) GETSTRUCT(&memberships->members[i]->tuple);

			if (membership_consented(m->member, m->grantor))
				todo = lappend_oid(todo, m->roleid);
		}
		ReleaseSysCacheList(memberships);
	}
	return false;
}

/*
 * card.role_is_shared(role_name name) RETURNS boolean
 *
 * Whether a role is one every tenant's roles may hold (a capability role
 * or a predefined one): no programme is granted to it but by a superuser,
 * and no one creates programmes or consumers acting as it.
 */
PG_FUNCTION_INFO_V1(card_role_is_shared);
Datum
card_role_is_shared(PG_FUNCTION_ARGS)
{
	Oid			role;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	role = get_role_oid(NameStr(*PG_GETARG_NAME(0)), true);
	PG_RETURN_BOOL(OidIsValid(role) && role_is_shared(role));
}

/*
 * card.caller_has_role(role_name name) RETURNS boolean
 *
 * Whether the caller has the privileges of the named role (is it, or
 * inherits from it).  A role dropped since it was granted a programme
 * counts as held by nobody.  A tenant's role that a shared role holds
 * counts as held by nobody either: a tenant may not reach every tenant by
 * making a shared role a member of a role it was granted to.  Nor does a
 * membership the member did not agree to count (caller_reaches).
 */
PG_FUNCTION_INFO_V1(card_caller_has_role);
Datum
card_caller_has_role(PG_FUNCTION_ARGS)
{
	Name		role_name = PG_GETARG_NAME(0);
	Oid			role = get_role_oid(NameStr(*role_name), true);

	PG_RETURN_BOOL(OidIsValid(role) && card_caller_reaches_role(card_caller_role(), role));
}

/* The rule of card.caller_has_role for a caller and an existing role. */
bool
card_caller_reaches_role(Oid caller, Oid role)
{
	return caller_reaches(caller, role) &&
		(role_is_shared(role) || !role_reaches_shared(role));
}
