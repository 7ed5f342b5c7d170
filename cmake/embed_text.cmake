# sluice_embed_text(SOURCE SYMBOL OUTPUT): the text file SOURCE becomes the C string SYMBOL in the
# generated file OUTPUT, so the binary carries a shipped data file and parses it with the same code
# as a site's own. Written through a copy so that an unchanged file keeps its time stamp (no
# needless rebuild).
function(sluice_embed_text source symbol output)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${source})
    file(READ ${source} text)
    string(REPLACE "\\" "\\\\" text "${text}")
    string(REPLACE "\"" "\\\"" text "${text}")
    string(REPLACE "\n" "\\n\"\n    \"" text "${text}")
    file(RELATIVE_PATH shown ${PROJECT_SOURCE_DIR} ${source})
    file(WRITE ${output}.tmp
         "/* Generated from ${shown} by cmake/embed_text.cmake: do not edit. */\n"
         "const char ${symbol}[] =\n    \"${text}\";\n")
    configure_file(${output}.tmp ${output} COPYONLY)
endfunction()
