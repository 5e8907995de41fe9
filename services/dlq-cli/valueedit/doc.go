// Package valueedit changes the value of a dead letter the way `dlq edit`
// does: field assignments (--set data.quantity=4) or a person's editor, then
// validation as the event the record claims to be, and a diff to show what
// changed.
//
// "Deal with the data" means a person fixes a record that no retry could
// fix (a quantity of 0, a misspelt city) and sends the fixed copy through
// the pipeline again. Assignments keep every other byte of the value as it
// was, so the diff shows only the change.
package valueedit
