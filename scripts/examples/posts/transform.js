// Filtering soft-deleted rows of public.posts.
//
// Returning null means "this row must not be in the index": walsearch emits a
// delete for the post's document, so a post that gets soft-deleted later
// leaves the index, and comes back if deleted_at is cleared again.
function transform(doc, ctx) {
  if (doc.deleted_at !== null && doc.deleted_at !== undefined) {
    return null;
  }
  delete doc.deleted_at;
  return doc;
}
