# swinetd: build, install and package.
#
#   make                                   release build (static Swift stdlib)
#   make install [PREFIX=/usr/local] [DESTDIR=]   (after make; builds only if nothing is built)
#   make uninstall [PREFIX=/usr/local] [DESTDIR=]
#   make deb                               dist/swinetd_VERSION_ARCH.deb
#   make check-packaging                   man page and .deb tests (root for the .deb)
#
# The daemon goes to $(PREFIX)/sbin, as every inetd does (it is an admin's
# daemon, not a user command). Configuration goes to $(SYSCONFDIR), which is
# /etc whatever the prefix; an existing /etc/swinetd.conf is never replaced.

PREFIX      ?= /usr/local
DESTDIR     ?=
SBINDIR     ?= $(PREFIX)/sbin
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
DOCDIR      ?= $(DATADIR)/doc/swinetd
SYSCONFDIR  ?= /etc
# systemd reads units from /usr/local/lib/systemd/system too.
UNITDIR     ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR  ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d

SWIFT       ?= swift
# Another scratch path keeps a packaging build apart from a developer's .build.
SCRATCH     ?= .build
SWIFT_BUILD  = $(SWIFT) build -c release --static-swift-stdlib --product swinetd --scratch-path $(SCRATCH)
BINDIR_BUILT = $(SCRATCH)/release
BIN          = $(BINDIR_BUILT)/swinetd
GEN          = $(SCRATCH)/packaging

INSTALL     ?= install
DOCS         = README.md docs/CONFIGURATION.md $(wildcard docs/XINETD.md) docs/MIGRATING.md docs/SANDBOX.md docs/TLS.md \
               examples/swinetd.conf examples/demo.conf $(wildcard examples/xinetd.conf)

# Version: the VERSION file, else `git describe` made into a Debian version.
VERSION     := $(shell cat VERSION 2>/dev/null || git describe --tags --always 2>/dev/null | sed -e 's/^v//' -e 's/-\([0-9]*\)-g/+git\1.g/')
DEB_ARCH    := $(shell dpkg --print-architecture 2>/dev/null)
DEB         := dist/swinetd_$(VERSION)_$(DEB_ARCH).deb
DEB_STAGE   := $(SCRATCH)/deb-root

.PHONY: all build completions install install-strip uninstall deb check-packaging test-man test-deb clean-dist

all: build

build:
	$(SWIFT_BUILD)

# `make install` builds only when there is no binary yet, so `make && sudo make install` works
# where root has no swift in its PATH. Run `make` again after changing the sources.
$(BIN):
	$(SWIFT_BUILD)

# Completion scripts are written by swift-argument-parser from the built binary.
completions: $(BIN)
	mkdir -p $(GEN)
	$(BIN) --generate-completion-script bash > $(GEN)/swinetd.bash
	$(BIN) --generate-completion-script zsh > $(GEN)/_swinetd
	$(BIN) --generate-completion-script fish > $(GEN)/swinetd.fish
	sed 's|/usr/sbin/swinetd|$(SBINDIR)/swinetd|g' packaging/swinetd.service > $(GEN)/swinetd.service

install: $(BIN) completions
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(SYSCONFDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	$(INSTALL) -m 755 $(BIN) $(DESTDIR)$(SBINDIR)/swinetd
	$(INSTALL) -m 644 man/swinetd.8 $(DESTDIR)$(MANDIR)/man8/swinetd.8
	$(INSTALL) -m 644 man/swinetd.conf.5 $(DESTDIR)$(MANDIR)/man5/swinetd.conf.5
	$(INSTALL) -m 644 $(GEN)/swinetd.service $(DESTDIR)$(UNITDIR)/swinetd.service
	$(INSTALL) -m 644 $(GEN)/swinetd.bash $(DESTDIR)$(BASHCOMPDIR)/swinetd
	$(INSTALL) -m 644 $(GEN)/_swinetd $(DESTDIR)$(ZSHCOMPDIR)/_swinetd
	$(INSTALL) -m 644 $(GEN)/swinetd.fish $(DESTDIR)$(FISHCOMPDIR)/swinetd.fish
	$(INSTALL) -m 644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/swinetd.conf ]; then \
		echo "kept the existing $(DESTDIR)$(SYSCONFDIR)/swinetd.conf (example: $(DOCDIR)/swinetd.conf)"; \
	else \
		echo "$(INSTALL) -m 644 examples/swinetd.conf $(DESTDIR)$(SYSCONFDIR)/swinetd.conf"; \
		$(INSTALL) -m 644 examples/swinetd.conf $(DESTDIR)$(SYSCONFDIR)/swinetd.conf; \
	fi

install-strip: install
	strip --strip-unneeded $(DESTDIR)$(SBINDIR)/swinetd

# The configuration file is left in place, as package managers do until a purge.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/swinetd \
		$(DESTDIR)$(MANDIR)/man8/swinetd.8 $(DESTDIR)$(MANDIR)/man5/swinetd.conf.5 \
		$(DESTDIR)$(UNITDIR)/swinetd.service \
		$(DESTDIR)$(BASHCOMPDIR)/swinetd $(DESTDIR)$(ZSHCOMPDIR)/_swinetd $(DESTDIR)$(FISHCOMPDIR)/swinetd.fish
	rm -rf $(DESTDIR)$(DOCDIR)
	@echo "left $(DESTDIR)$(SYSCONFDIR)/swinetd.conf in place"

# A Debian package of the /usr layout (Debian 12: units in /lib/systemd/system,
# zsh completions in vendor-completions), built with dpkg-deb.
deb: build
	rm -rf $(DEB_STAGE)
	$(MAKE) --no-print-directory install-strip DESTDIR=$(abspath $(DEB_STAGE)) PREFIX=/usr SYSCONFDIR=/etc \
		UNITDIR=/lib/systemd/system ZSHCOMPDIR=/usr/share/zsh/vendor-completions \
		SCRATCH=$(SCRATCH) SWIFT=$(SWIFT)
	VERSION='$(VERSION)' ARCH='$(DEB_ARCH)' sh packaging/build-deb.sh $(DEB_STAGE) $(DEB)

check-packaging: test-man test-deb

test-man:
	bash Tests/packaging/test-man.sh

test-deb:
	bash Tests/packaging/test-deb.sh

clean-dist:
	rm -rf dist $(DEB_STAGE) $(GEN)
