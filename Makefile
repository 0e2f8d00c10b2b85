# vmclone: build, test and install.
#
#   make                     build the service, the app and vmclonectl (release), with
#                            vmclonectl's man pages and shell completions
#   sudo make install        install under prefix (default /usr/local)
#   make install DESTDIR=$(pkgdir) prefix=/usr     what a distribution package does
#
# The system bus and polkit read their files only from fixed places, so a few files go
# outside $(prefix) whatever it is (all overridable):
#   bus policy       $(dbuspolicydir)  /usr/share/dbus-1/system.d with prefix=/usr,
#                    otherwise /etc/dbus-1/system.d (the bus reads no other folder)
#   polkit actions   $(polkitactiondir) /usr/share/polkit-1/actions (polkitd reads only it)
# The bus activation file ($(datadir)/dbus-1/system-services) and the systemd unit
# ($(prefix)/lib/systemd/system) work from both /usr and /usr/local.

prefix ?= /usr/local
exec_prefix ?= $(prefix)
bindir ?= $(exec_prefix)/bin
libexecdir ?= $(exec_prefix)/libexec
datarootdir ?= $(prefix)/share
datadir ?= $(datarootdir)
localedir ?= $(datarootdir)/locale
docdir ?= $(datarootdir)/doc/vmclone
sysconfdir ?= /etc
dbuspolicydir ?= $(if $(filter /usr,$(prefix)),$(datadir)/dbus-1/system.d,$(sysconfdir)/dbus-1/system.d)
dbussystemservicedir ?= $(datadir)/dbus-1/system-services
dbusinterfacesdir ?= $(datadir)/dbus-1/interfaces
polkitactiondir ?= /usr/share/polkit-1/actions
systemdsystemunitdir ?= $(prefix)/lib/systemd/system
mandir ?= $(datarootdir)/man
bashcompletiondir ?= $(datadir)/bash-completion/completions
# Debian's zsh reads vendor-completions under /usr, site-functions under /usr/local.
zshcompletiondir ?= $(if $(filter /usr,$(prefix)),$(datadir)/zsh/vendor-completions,$(datadir)/zsh/site-functions)
fishcompletiondir ?= $(datadir)/fish/vendor_completions.d

CARGO ?= cargo
CARGO_FLAGS ?= --locked
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
INSTALL ?= install
MSGFMT ?= msgfmt

SERVICE_BIN := $(TARGET_DIR)/release/vmclone-service
APP_BIN := $(TARGET_DIR)/release/vmclone
CLI_BIN := $(TARGET_DIR)/release/vmclonectl
# vmclonectl's man pages and completions, written by `make` (vmclonectl-gen).
CLI_DOCS := $(TARGET_DIR)/vmclonectl
CLI_MAN_PAGES = $(notdir $(wildcard $(CLI_DOCS)/man/*.1))
# Languages with a translation: po/LINGUAS, one code per line, # comments.
LINGUAS := $(strip $(shell sed -e 's/\#.*//' po/LINGUAS))
ICONS := $(patsubst data/icons/%,%,$(shell find data/icons -type f 2>/dev/null))

.PHONY: all build install uninstall demo test check bench clean

all: build

# The app finds its translations in $(localedir) once installed.
build:
	VMCLONE_LOCALEDIR=$(localedir) $(CARGO) build --release --workspace $(CARGO_FLAGS)
	rm -rf $(CLI_DOCS)
	$(TARGET_DIR)/release/vmclonectl-gen $(CLI_DOCS)

# Does not build (so `make && sudo make install` runs cargo as the user only).
install:
	@test -x $(SERVICE_BIN) -a -x $(APP_BIN) -a -x $(CLI_BIN) -a -d $(CLI_DOCS)/man || \
		{ echo "$(SERVICE_BIN), $(APP_BIN), $(CLI_BIN) or $(CLI_DOCS) missing: run 'make' first" >&2; exit 1; }
	$(INSTALL) -D -m 0755 $(SERVICE_BIN) $(DESTDIR)$(libexecdir)/vmclone-service
	$(INSTALL) -D -m 0755 $(APP_BIN) $(DESTDIR)$(bindir)/vmclone
	$(INSTALL) -D -m 0755 $(CLI_BIN) $(DESTDIR)$(bindir)/vmclonectl
	$(INSTALL) -d $(DESTDIR)$(mandir)/man1
	$(INSTALL) -m 0644 $(addprefix $(CLI_DOCS)/man/,$(CLI_MAN_PAGES)) $(DESTDIR)$(mandir)/man1/
	$(INSTALL) -D -m 0644 $(CLI_DOCS)/completions/vmclonectl $(DESTDIR)$(bashcompletiondir)/vmclonectl
	$(INSTALL) -D -m 0644 $(CLI_DOCS)/completions/_vmclonectl $(DESTDIR)$(zshcompletiondir)/_vmclonectl
	$(INSTALL) -D -m 0644 $(CLI_DOCS)/completions/vmclonectl.fish $(DESTDIR)$(fishcompletiondir)/vmclonectl.fish
	$(INSTALL) -D -m 0644 data/org.vmclone.Manager.conf $(DESTDIR)$(dbuspolicydir)/org.vmclone.Manager.conf
	$(INSTALL) -d $(DESTDIR)$(dbussystemservicedir) $(DESTDIR)$(systemdsystemunitdir)
	sed -e 's|^Exec=.*|Exec=$(libexecdir)/vmclone-service|' data/org.vmclone.Manager.service \
		> $(DESTDIR)$(dbussystemservicedir)/org.vmclone.Manager.service
	sed -e 's|/usr/libexec/vmclone-service|$(libexecdir)/vmclone-service|' data/vmclone.service \
		> $(DESTDIR)$(systemdsystemunitdir)/vmclone.service
	chmod 0644 $(DESTDIR)$(dbussystemservicedir)/org.vmclone.Manager.service \
		$(DESTDIR)$(systemdsystemunitdir)/vmclone.service
	$(INSTALL) -d $(DESTDIR)$(polkitactiondir) $(DESTDIR)$(datadir)/applications $(DESTDIR)$(datadir)/metainfo
	$(MSGFMT) --xml --template=data/org.vmclone.policy -d po -o $(DESTDIR)$(polkitactiondir)/org.vmclone.policy
	$(MSGFMT) --desktop --template=data/org.vmclone.VmClone.desktop -d po \
		-o $(DESTDIR)$(datadir)/applications/org.vmclone.VmClone.desktop
	$(MSGFMT) --xml --template=data/org.vmclone.VmClone.metainfo.xml -d po \
		-o $(DESTDIR)$(datadir)/metainfo/org.vmclone.VmClone.metainfo.xml
	chmod 0644 $(DESTDIR)$(polkitactiondir)/org.vmclone.policy \
		$(DESTDIR)$(datadir)/applications/org.vmclone.VmClone.desktop \
		$(DESTDIR)$(datadir)/metainfo/org.vmclone.VmClone.metainfo.xml
	$(INSTALL) -D -m 0644 data/org.vmclone.Manager.xml $(DESTDIR)$(dbusinterfacesdir)/org.vmclone.Manager.xml
	$(INSTALL) -D -m 0644 data/org.vmclone.Job.xml $(DESTDIR)$(dbusinterfacesdir)/org.vmclone.Job.xml
	$(INSTALL) -D -m 0644 data/org.vmclone.VmClone.gschema.xml \
		$(DESTDIR)$(datadir)/glib-2.0/schemas/org.vmclone.VmClone.gschema.xml
	$(foreach icon,$(ICONS),$(INSTALL) -D -m 0644 data/icons/$(icon) $(DESTDIR)$(datadir)/icons/$(icon) &&) true
	$(foreach lang,$(LINGUAS),$(INSTALL) -d $(DESTDIR)$(localedir)/$(lang)/LC_MESSAGES && \
		$(MSGFMT) -c -o $(DESTDIR)$(localedir)/$(lang)/LC_MESSAGES/vmclone.mo po/$(lang).po &&) true
	$(INSTALL) -D -m 0644 README.md $(DESTDIR)$(docdir)/README.md

uninstall:
	rm -f $(DESTDIR)$(libexecdir)/vmclone-service $(DESTDIR)$(bindir)/vmclone \
		$(DESTDIR)$(bindir)/vmclonectl $(DESTDIR)$(mandir)/man1/vmclonectl.1 \
		$(DESTDIR)$(mandir)/man1/vmclonectl-*.1 \
		$(DESTDIR)$(bashcompletiondir)/vmclonectl $(DESTDIR)$(zshcompletiondir)/_vmclonectl \
		$(DESTDIR)$(fishcompletiondir)/vmclonectl.fish \
		$(DESTDIR)$(dbuspolicydir)/org.vmclone.Manager.conf \
		$(DESTDIR)$(dbussystemservicedir)/org.vmclone.Manager.service \
		$(DESTDIR)$(systemdsystemunitdir)/vmclone.service \
		$(DESTDIR)$(polkitactiondir)/org.vmclone.policy \
		$(DESTDIR)$(dbusinterfacesdir)/org.vmclone.Manager.xml \
		$(DESTDIR)$(dbusinterfacesdir)/org.vmclone.Job.xml \
		$(DESTDIR)$(datadir)/applications/org.vmclone.VmClone.desktop \
		$(DESTDIR)$(datadir)/metainfo/org.vmclone.VmClone.metainfo.xml \
		$(DESTDIR)$(datadir)/glib-2.0/schemas/org.vmclone.VmClone.gschema.xml \
		$(addprefix $(DESTDIR)$(datadir)/icons/,$(ICONS)) \
		$(foreach lang,$(LINGUAS),$(DESTDIR)$(localedir)/$(lang)/LC_MESSAGES/vmclone.mo) \
		$(DESTDIR)$(docdir)/README.md
	rmdir $(DESTDIR)$(docdir) 2>/dev/null || true

# A private bus, the service on libvirt's test driver, one clone over busctl.
demo:
	tools/demo.sh

# The embedded default: no root, no system daemons.
test:
	$(CARGO) test --workspace

# Everything CI runs: host setup, fmt, clippy, all tests including the root-only ones.
check:
	tools/check-all.sh

bench:
	tools/bench.sh

clean:
	$(CARGO) clean
