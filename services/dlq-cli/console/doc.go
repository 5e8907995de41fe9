// Package console is dlq's web console (`dlq ui`): the dead letters of the
// topic in a browser, with the same filters as `dlq list`, one letter in
// detail, and the actions (edit the value, redrive a selection after a dry
// run, resolve with a note), each going through the same code as the CLI.
//
// It is server-rendered HTML (html/template) with a little JavaScript for
// the live list and the progress bar; the templates, the stylesheet and
// the script are embedded in the binary (embed.FS), so it works offline and
// needs no JavaScript toolchain. Every page is usable without the script:
// forms post and pages reload.
//
// Security, because a console that can redrive is a door into the
// pipeline:
//
//   - it binds to 127.0.0.1 by default; bound elsewhere it requires a
//     token (Authorization: Bearer, or ?token= once, which sets a
//     SameSite=Strict, HttpOnly cookie);
//   - on loopback it answers only requests whose Host names a loopback
//     address, so a web page cannot reach it through DNS rebinding;
//   - every action is a POST that carries the page's CSRF token (random per
//     server, compared in constant time) and is refused when the browser
//     says it comes from another site (Sec-Fetch-Site, Origin).
//
// The Backend interface is what the console needs from dlq; package dlq
// implements it with the CLI's own session, redrive engine and resolution
// log, so the console and the CLI cannot disagree.
package console
