// Package compose runs `docker compose config` (Compose v2) or
// `docker-compose config` (v1.28 or later), whichever the machine has, and
// reads the resolved project it prints: services with their variables
// interpolated, YAML anchors merged and relative paths made absolute.
//
// Compose validates the file against its schema when it prints the
// configuration, so an unknown key or a wrong type fails here. What the
// schema cannot know (a dependency on a service that the active profiles
// leave out, a bind mount of a file that does not exist, a variable the
// service never reads) is left to the caller, on the typed Project.
//
// Compose v1 prints every service whatever the profiles; v2 prints only the
// active ones. Project.Active gives the same answer for both.
package compose
