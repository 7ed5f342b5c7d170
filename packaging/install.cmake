# Where `cmake --install` puts Sluice's files (the Debian package uses the same rules, with
# CMAKE_INSTALL_PREFIX=/usr): the program in sbin, its configuration and log rotation under the
# system configuration directory (/etc for the /usr prefix), the systemd unit, the manual pages,
# bash completion and the documentation. The spool and log directories belong to the `sluice` user
# and are made by whoever creates that user (the package's postinst; docs/install.md by hand).
include(GNUInstallDirs)

set(SLUICE_SYSTEMD_UNIT_DIR "/lib/systemd/system" CACHE PATH "Where the systemd unit goes")
set(SLUICE_BASH_COMPLETION_DIR "${CMAKE_INSTALL_DATADIR}/bash-completion/completions"
    CACHE PATH "Where the bash completion goes")

install(TARGETS sluice RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
# The configuration is the administrator's once installed: a later `cmake --install` leaves it
# alone (the package's conffile handling does the same for dpkg).
set(SLUICE_CONFIG_DIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/sluice)
install(CODE "
    if(EXISTS \"\$ENV{DESTDIR}${SLUICE_CONFIG_DIR}/sluice.yaml\")
        message(STATUS \"Kept: \$ENV{DESTDIR}${SLUICE_CONFIG_DIR}/sluice.yaml\")
    else()
        file(INSTALL ${PROJECT_SOURCE_DIR}/packaging/sluice.yaml DESTINATION ${SLUICE_CONFIG_DIR})
    endif()")
install(FILES ${PROJECT_SOURCE_DIR}/packaging/sluice.logrotate
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/logrotate.d RENAME sluice)
# The unit names the installed program, configuration and documentation.
set(SLUICE_SBIN ${CMAKE_INSTALL_FULL_SBINDIR})
set(SLUICE_ETC ${CMAKE_INSTALL_FULL_SYSCONFDIR})
set(SLUICE_DOC ${CMAKE_INSTALL_FULL_DOCDIR})
configure_file(${PROJECT_SOURCE_DIR}/packaging/sluice.service.in ${PROJECT_BINARY_DIR}/sluice.service
               @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sluice.service DESTINATION ${SLUICE_SYSTEMD_UNIT_DIR})
install(FILES ${PROJECT_SOURCE_DIR}/packaging/sluice.bash-completion
        DESTINATION ${SLUICE_BASH_COMPLETION_DIR} RENAME sluice)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/sluice.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/sluice.yaml.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
# docs/ as docs/, so that the README's links hold.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs
        FILES_MATCHING PATTERN "*.md" PATTERN "man" EXCLUDE)
