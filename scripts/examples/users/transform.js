// PII masking and a computed field for public.users.
//
// The index never sees the password hash or the full e-mail address: the
// local part is masked, the domain kept (still useful for search and facets).
// full_name is computed so the search API can match and sort on it.
function transform(doc, ctx) {
  delete doc.password_hash;
  if (typeof doc.email === "string") {
    var at = doc.email.indexOf("@");
    doc.email_domain = at >= 0 ? doc.email.slice(at + 1) : null;
    doc.email = at > 0 ? doc.email[0] + "***" + doc.email.slice(at) : "***";
  }
  doc.full_name = [doc.first_name, doc.last_name].filter(Boolean).join(" ");
  return doc;
}
